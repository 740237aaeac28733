//! The one integration test binary.
//!
//! `harness` starts throwaway PostgreSQL clusters; `live` holds the tests that need one.
mod harness;
mod live;
