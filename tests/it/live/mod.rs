//! Tests against real PostgreSQL servers.
