//! The one table of differences between PostgreSQL major versions 13 to 18.
//!
//! Each supported major is one [`PgVersion`] row; nothing else in the crate compares version
//! numbers (STYLE.md rule 6, after pgbackrest's `src/postgres/interface.c`). The values come
//! from each version's `src/include/access/xlog_internal.h` (`XLOG_PAGE_MAGIC`,
//! `XLP_ALL_FLAGS`), `src/include/access/rmgrlist.h` and `rmgr.h` (built-in and custom
//! resource manager ids), `src/include/access/xlogrecord.h` (`BKPIMAGE_*` flags,
//! `XLR_BLOCK_ID_TOPLEVEL_XID`, `XLogRecordMaxSize`) and `src/include/access/xact.h`
//! (`xl_xact_stats_item`), cross-checked with PROTOCOL.md §7.1 and §9.
//!
//! Adding a major version means adding one row here (and one golden fixture).

/// One supported major version and the facts about its WAL format that differ between majors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgVersion {
    /// The major version number (13 to 18).
    pub major: u32,
    /// `XLOG_PAGE_MAGIC`: the first two bytes of every WAL page.
    pub xlog_page_magic: u16,
    /// `XLP_ALL_FLAGS`: the valid `xlp_info` bits. 0x000F since 13.5 / 14.1 added
    /// `XLP_FIRST_IS_OVERWRITE_CONTRECORD`; the earlier minors never set that bit, so accepting
    /// it for the whole major is safe.
    pub xlp_all_flags: u16,
    /// The highest built-in resource manager id (`RM_MAX_BUILTIN_ID`, `RM_LOGICALMSG_ID`).
    pub max_builtin_rmgr_id: u8,
    /// Whether custom resource managers (ids 128 to 255) exist (15+).
    pub custom_rmgrs: bool,
    /// The largest `xl_tot_len` a reader accepts: `XLogRecordMaxSize` (1020 MiB) since 15,
    /// `MaxAllocSize` (1 GiB - 1) before.
    pub max_record_len: u32,
    /// `bimg_info` bits meaning "this block image is compressed": `BKPIMAGE_IS_COMPRESSED`
    /// (0x02) in 13–14, `BKPIMAGE_COMPRESS_PGLZ | _LZ4 | _ZSTD` (0x1C) since 15.
    pub bkpimage_compressed_mask: u8,
    /// Whether block id 252 (`XLR_BLOCK_ID_TOPLEVEL_XID`) exists (14+).
    pub has_toplevel_xid_block: bool,
    /// `sizeof(xl_xact_stats_item)` in commit/abort records (`XACT_XINFO_HAS_DROPPED_STATS`,
    /// 15+): 12 bytes in 15–17, 16 in 18 (the object id became 64 bits). `None` before 15.
    pub xact_stats_item_size: Option<u32>,
}

const ALL_FLAGS: u16 = 0x000F;
const MAX_ALLOC_SIZE: u32 = 0x3FFF_FFFF;
const XLOG_RECORD_MAX_SIZE: u32 = 1020 * 1024 * 1024;

/// Every supported major version, oldest first.
pub static VERSIONS: [PgVersion; 6] = [
    PgVersion {
        major: 13,
        xlog_page_magic: 0xD106,
        xlp_all_flags: ALL_FLAGS,
        max_builtin_rmgr_id: 21,
        custom_rmgrs: false,
        max_record_len: MAX_ALLOC_SIZE,
        bkpimage_compressed_mask: 0x02,
        has_toplevel_xid_block: false,
        xact_stats_item_size: None,
    },
    PgVersion {
        major: 14,
        xlog_page_magic: 0xD10D,
        xlp_all_flags: ALL_FLAGS,
        max_builtin_rmgr_id: 21,
        custom_rmgrs: false,
        max_record_len: MAX_ALLOC_SIZE,
        bkpimage_compressed_mask: 0x02,
        has_toplevel_xid_block: true,
        xact_stats_item_size: None,
    },
    PgVersion {
        major: 15,
        xlog_page_magic: 0xD110,
        xlp_all_flags: ALL_FLAGS,
        max_builtin_rmgr_id: 21,
        custom_rmgrs: true,
        max_record_len: XLOG_RECORD_MAX_SIZE,
        bkpimage_compressed_mask: 0x1C,
        has_toplevel_xid_block: true,
        xact_stats_item_size: Some(12),
    },
    PgVersion {
        major: 16,
        xlog_page_magic: 0xD113,
        xlp_all_flags: ALL_FLAGS,
        max_builtin_rmgr_id: 21,
        custom_rmgrs: true,
        max_record_len: XLOG_RECORD_MAX_SIZE,
        bkpimage_compressed_mask: 0x1C,
        has_toplevel_xid_block: true,
        xact_stats_item_size: Some(12),
    },
    PgVersion {
        major: 17,
        xlog_page_magic: 0xD116,
        xlp_all_flags: ALL_FLAGS,
        max_builtin_rmgr_id: 21,
        custom_rmgrs: true,
        max_record_len: XLOG_RECORD_MAX_SIZE,
        bkpimage_compressed_mask: 0x1C,
        has_toplevel_xid_block: true,
        xact_stats_item_size: Some(12),
    },
    PgVersion {
        major: 18,
        xlog_page_magic: 0xD118,
        xlp_all_flags: ALL_FLAGS,
        max_builtin_rmgr_id: 21,
        custom_rmgrs: true,
        max_record_len: XLOG_RECORD_MAX_SIZE,
        bkpimage_compressed_mask: 0x1C,
        has_toplevel_xid_block: true,
        xact_stats_item_size: Some(16),
    },
];

/// The first custom resource manager id (`RM_MIN_CUSTOM_ID`, 15+).
const RM_MIN_CUSTOM_ID: u8 = 128;

impl PgVersion {
    /// The row for a major version (13 to 18), or `None` for an unsupported one.
    pub fn for_major(major: u32) -> Option<&'static PgVersion> {
        VERSIONS.iter().find(|v| v.major == major)
    }

    /// The row whose `XLOG_PAGE_MAGIC` is `magic`, or `None` when no supported version uses it.
    pub fn for_page_magic(magic: u16) -> Option<&'static PgVersion> {
        VERSIONS.iter().find(|v| v.xlog_page_magic == magic)
    }

    /// The supported major versions, oldest first.
    pub fn supported_majors() -> impl Iterator<Item = u32> {
        VERSIONS.iter().map(|v| v.major)
    }

    /// `RmgrIdIsValid`: whether a record may carry this resource manager id.
    pub fn is_valid_rmgr_id(&self, rmid: u8) -> bool {
        rmid <= self.max_builtin_rmgr_id || (self.custom_rmgrs && rmid >= RM_MIN_CUSTOM_ID)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_magic_per_major_matches_protocol_md() {
        let expected = [
            (13, 0xD106),
            (14, 0xD10D),
            (15, 0xD110),
            (16, 0xD113),
            (17, 0xD116),
            (18, 0xD118),
        ];
        for (major, magic) in expected {
            let v = PgVersion::for_major(major).unwrap();
            assert_eq!(v.xlog_page_magic, magic, "PostgreSQL {major}");
            assert_eq!(PgVersion::for_page_magic(magic).unwrap().major, major);
        }
        assert_eq!(
            PgVersion::supported_majors().collect::<Vec<_>>(),
            vec![13, 14, 15, 16, 17, 18]
        );
    }

    #[test]
    fn unknown_versions_and_magics_are_none() {
        assert!(PgVersion::for_major(12).is_none());
        assert!(PgVersion::for_major(19).is_none());
        assert!(PgVersion::for_page_magic(0xD101).is_none());
        assert!(PgVersion::for_page_magic(0).is_none());
    }

    #[test]
    fn rows_are_ordered_and_unique() {
        for pair in VERSIONS.windows(2) {
            assert!(pair[0].major < pair[1].major);
            assert!(pair[0].xlog_page_magic < pair[1].xlog_page_magic);
        }
    }

    #[test]
    fn rmgr_id_validity_follows_custom_rmgr_support() {
        let v13 = PgVersion::for_major(13).unwrap();
        let v15 = PgVersion::for_major(15).unwrap();
        for v in [v13, v15] {
            assert!(v.is_valid_rmgr_id(0));
            assert!(v.is_valid_rmgr_id(21));
            assert!(!v.is_valid_rmgr_id(22));
            assert!(!v.is_valid_rmgr_id(127));
        }
        assert!(!v13.is_valid_rmgr_id(128));
        assert!(v15.is_valid_rmgr_id(128));
        assert!(v15.is_valid_rmgr_id(255));
    }

    #[test]
    fn layout_differences_by_major() {
        let v = |m| PgVersion::for_major(m).unwrap();
        assert_eq!(v(13).bkpimage_compressed_mask, 0x02);
        assert_eq!(v(15).bkpimage_compressed_mask, 0x1C);
        assert!(!v(13).has_toplevel_xid_block);
        assert!(v(14).has_toplevel_xid_block);
        assert_eq!(v(14).xact_stats_item_size, None);
        assert_eq!(v(17).xact_stats_item_size, Some(12));
        assert_eq!(v(18).xact_stats_item_size, Some(16));
        assert_eq!(v(14).max_record_len, 0x3FFF_FFFF);
        assert_eq!(v(15).max_record_len, 1020 << 20);
    }
}
