//! Kubo's and boxo's own sharding vectors (`test/sharness/t0260-sharding.sh`, boxo's
//! `hamt_test.go`), made again offline. Kubo's CID-profile vectors, whose data comes from a
//! ChaCha20 stream, are checked end to end in the integration tests (`tests/it/ipfs.rs`).

use crate::unixfs::{self, Node, Profile};

#[test]
fn kubo_sharding_and_boxo_hamt_vectors_with_deeper_shards_match() {
    // Kubo's t0260-sharding.sh: 2000 files `file1`…`file2000` holding `"$i\n"`, sharded from
    // the first byte (`Import.UnixFSHAMTDirectorySizeThreshold = 1B`) and not at all (1G).
    let files = |profile: &Profile| -> Vec<(String, Node)> {
        (1..=2000)
            .map(|i| {
                let body = format!("{i}\n");
                let node =
                    unixfs::file(&mut body.as_bytes(), profile, &mut |_| Ok(())).expect("file");
                (format!("file{i}"), node)
            })
            .collect()
    };
    let dir = |profile: Profile, threshold: u64| {
        let p = Profile {
            hamt_threshold: threshold,
            ..profile
        };
        unixfs::directory(&files(&p), &p, &mut |_| Ok(()))
            .expect("directory")
            .cid
            .to_string()
    };
    assert_eq!(
        dir(Profile::UNIXFS_V0_2015, 1 << 30),
        "QmavrTrQG4VhoJmantURAYuw3bowq3E2WcvP36NRQDAC1N"
    );
    assert_eq!(
        dir(Profile::UNIXFS_V0_2015, 1),
        "QmSCJD1KYLhVVHqBK3YyXuoEqHt7vggyJhzoFYbT8v1XYL"
    );
    assert_eq!(
        dir(Profile::CID_V1, 1),
        "bafybeibiemewfzzdyhq2l74wrd6qj2oz42usjlktgnlqv4yfawgouaqn4u"
    );

    // boxo's hamt_test.go TestDirBuilding: 200 empty folders `DIRNAME0`…`DIRNAME199`.
    let p = Profile {
        hamt_threshold: 1,
        ..Profile::UNIXFS_V0_2015
    };
    let empty = unixfs::directory(&[], &Profile::UNIXFS_V0_2015, &mut |_| Ok(())).expect("empty");
    let entries: Vec<(String, Node)> = (0..200).map(|i| (format!("DIRNAME{i}"), empty)).collect();
    let root = unixfs::directory(&entries, &p, &mut |_| Ok(())).expect("hamt");
    assert_eq!(
        root.cid.to_string(),
        "QmY89TkSEVHykWMHDmyejSWFj9CYNtvzw4UwnT9xbc4Zjc"
    );
    assert_eq!(root.dag_size, 15839);
}
