//! Key configurations: derivation from the seed, several live ids, windows, rotation.

use std::sync::Arc;

use cloister_gateway::keys::KeyError;
use cloister_gateway::{decapsulate, DecapError, KeySet, KeySpec, RedbStore, Seed};
use cloister_tunnel::{KEYS_PATH, OHTTP_KEYS_TYPE, OHTTP_PATH, OHTTP_REQ_TYPE, PROBLEM_OHTTP_KEY};

use crate::common::{http, now, test_seed, test_specs, FakeHost, TestGateway};

#[test]
fn same_seed_same_configs_and_ids_differ() {
    let specs = test_specs();
    let a = KeySet::derive(&Seed::from_bytes(test_seed()), &specs).expect("keys");
    let b = KeySet::derive(&Seed::from_bytes(test_seed()), &specs).expect("keys");
    let c = KeySet::derive(&Seed::from_bytes([9; 32]), &specs).expect("keys");
    for ((x, y), z) in a.keys().iter().zip(b.keys()).zip(c.keys()) {
        assert_eq!(x.config(), y.config(), "same seed, same config");
        assert_ne!(x.config(), z.config(), "another seed, another key");
        assert_eq!(x.config()[0], x.spec().id);
        assert_eq!(x.config().len(), 1 + 2 + 32 + 2 + 8);
    }
    assert_ne!(a.keys()[0].config()[3..35], a.keys()[1].config()[3..35]);
    assert_eq!(a.encoded_configs(now()), b.encoded_configs(now()));
    // Regression pin: replicas of any version must derive the same key from the same seed.
    assert_eq!(
        hex::encode(a.keys()[0].config()),
        "010020bf124ca52887f87b0381b1347417602b2f7d2d179038f3250b2a95d90630594e00080001000100010003",
    );
}

#[test]
fn only_keys_in_their_window_are_served_and_accepted() {
    let keys = KeySet::derive(&Seed::from_bytes(test_seed()), &test_specs()).expect("keys");
    let t = now();
    let list = keys.encoded_configs(t);
    // Ids 1 and 2 live: two length-prefixed configurations, in order.
    assert_eq!(list.len(), 2 * (2 + 45));
    assert_eq!(&list[..3], &[0, 45, 1]);
    assert_eq!(&list[47..50], &[0, 45, 2]);
    assert!(keys.key_for(3, t).is_err(), "expired");
    assert!(keys.key_for(4, t).is_err(), "not yet valid");
    assert!(keys.key_for(4, t + 3600).is_ok());
    assert!(keys.key_for(9, t).is_err());
}

#[test]
fn rotation_keeps_the_old_id_until_its_window_closes() {
    ohttp::init();
    let t = 1_000_000;
    let specs = [
        KeySpec {
            id: 7,
            not_before: t - 100,
            not_after: t + 100,
        },
        KeySpec {
            id: 8,
            not_before: t,
            not_after: t + 1000,
        },
    ];
    let keys = KeySet::derive(&Seed::from_bytes(test_seed()), &specs).expect("keys");
    let old = keys.key_for(7, t).expect("old").config().to_vec();
    let (enc_old, _) = ohttp::ClientRequest::from_encoded_config(&old)
        .expect("client")
        .encapsulate(b"to the old key")
        .expect("encapsulate");
    // Both served and accepted while both windows are open.
    assert_eq!(
        ohttp::KeyConfig::decode_list(&keys.encoded_configs(t))
            .expect("list")
            .len(),
        2
    );
    assert_eq!(
        decapsulate(&keys, t + 99, &enc_old)
            .expect("old works")
            .request,
        b"to the old key"
    );
    // After the old window: only the new id is served; the old id is a key problem.
    assert_eq!(keys.encoded_configs(t + 100)[2], 8);
    let e = decapsulate(&keys, t + 100, &enc_old).expect_err("old closed");
    assert_eq!(e, DecapError::ExpiredKey(7));
    assert!(e.is_key_problem());
}

#[test]
fn key_specs_and_seeds_refuse_bad_input() {
    for (text, want) in [
        ("", "no key configured"),
        ("1:10", "three fields"),
        ("1:10:20:30", "three fields"),
        ("256:10:20", "0..=255"),
        ("x:10:20", "0..=255"),
        ("1:a:20", "not_before"),
        ("1:10:-1", "not_after"),
        ("1:20:20", "later than"),
        ("1:10:20,1:30:40", "twice"),
    ] {
        let e = KeySpec::parse_list(text).expect_err(text).to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    assert_eq!(
        KeySpec::parse_list(" 1:10:20 , 2:15:30 ").expect("ok"),
        vec![
            KeySpec {
                id: 1,
                not_before: 10,
                not_after: 20
            },
            KeySpec {
                id: 2,
                not_before: 15,
                not_after: 30
            },
        ]
    );
    let dir = tempfile::tempdir().expect("tmp");
    let short = dir.path().join("short");
    std::fs::write(&short, [1u8; 31]).expect("write");
    assert!(matches!(Seed::read(&short), Err(KeyError::SeedLength(31))));
    let missing = Seed::read(&dir.path().join("missing"))
        .expect_err("missing")
        .to_string();
    assert!(missing.contains("missing"), "{missing}");
    let good = dir.path().join("seed");
    Seed::generate()
        .expect("seed")
        .write_new(&good)
        .expect("write");
    assert!(
        Seed::generate().expect("seed").write_new(&good).is_err(),
        "never overwrites"
    );
    assert_eq!(std::fs::read(&good).expect("read").len(), 32);
    assert!(Seed::read(&good).is_ok());
}

/// Over HTTP: the keys route and the problem type for expired, future and unknown ids.
#[tokio::test]
async fn served_keys_and_key_problems_over_http() {
    let host = FakeHost::start(0).await;
    let dir = tempfile::tempdir().expect("tmp");
    let store = Arc::new(
        RedbStore::open(&dir.path().join("spent.redb"), std::time::Duration::ZERO).expect("store"),
    );
    let gw = TestGateway::start(&[host.url()], store).await;

    let a = http("GET", &format!("{}{KEYS_PATH}", gw.url), &[], vec![]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some(OHTTP_KEYS_TYPE));
    let mut want = Vec::new();
    for id in [1u8, 2] {
        let c = gw.config(id);
        want.extend_from_slice(&(c.len() as u16).to_be_bytes());
        want.extend_from_slice(&c);
    }
    assert_eq!(a.body, want);
    assert_eq!(
        http("POST", &format!("{}{KEYS_PATH}", gw.url), &[], vec![])
            .await
            .status,
        405
    );

    ohttp::init();
    for id in [3u8, 4] {
        let (enc, _) = ohttp::ClientRequest::from_encoded_config(&gw.config(id))
            .expect("client")
            .encapsulate(b"x")
            .expect("enc");
        let a = http(
            "POST",
            &format!("{}{OHTTP_PATH}", gw.url),
            &[("content-type", OHTTP_REQ_TYPE)],
            enc,
        )
        .await;
        assert_eq!(a.status, 400, "key {id}");
        assert_eq!(a.header("content-type"), Some("application/problem+json"));
        assert_eq!(a.json()["type"], PROBLEM_OHTTP_KEY, "key {id}");
    }
    // An id never configured.
    let (mut enc, _) = ohttp::ClientRequest::from_encoded_config(&gw.config(1))
        .expect("client")
        .encapsulate(b"x")
        .expect("enc");
    enc[0] = 200;
    let a = http(
        "POST",
        &format!("{}{OHTTP_PATH}", gw.url),
        &[("content-type", OHTTP_REQ_TYPE)],
        enc,
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["type"], PROBLEM_OHTTP_KEY);
    assert!(host.received().is_empty());
}
