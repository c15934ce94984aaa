//! Published vectors: RFC 9458 Appendix A (the gateway's side, byte for byte) and the RFC 9292
//! examples through `bhttp`; and interoperation with the `ohttp` crate's client.

use std::io::Cursor;

use cloister_gateway::encap::EncapError;
use cloister_gateway::{decapsulate, DecapError, GatewayKey, KeySet, KeySpec, Seed};

use crate::common::now;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/ohttp/"
);

fn load(name: &str) -> serde_json::Value {
    let path = format!("{VECTORS}{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("json")
}

fn hexv(v: &serde_json::Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("{key} missing"))).expect("hex")
}

const ALWAYS: (u64, u64) = (0, u64::MAX);

#[test]
fn rfc9458_appendix_a_gateway_side_byte_for_byte() {
    let v = load("rfc9458_appendix_a.json");
    let rfc = &v["values_from_rfc"];
    let sk: [u8; 32] = hexv(rfc, "skR").try_into().expect("32 bytes");
    let spec = KeySpec {
        id: 1,
        not_before: ALWAYS.0,
        not_after: ALWAYS.1,
    };
    let key = GatewayKey::from_secret(spec, &sk).expect("key");
    // The key configuration.
    assert_eq!(
        hex::encode(key.config()),
        hex::encode(hexv(rfc, "key_config"))
    );
    let keys = KeySet::from_keys(vec![key]).expect("set");
    // application/ohttp-keys: a 2-byte length prefix and the configuration.
    let list = keys.encoded_configs(now());
    assert_eq!(
        &list[..2],
        &(hexv(rfc, "key_config").len() as u16).to_be_bytes()
    );
    assert_eq!(list[2..], hexv(rfc, "key_config")[..]);

    // The decapsulated request.
    let opened = decapsulate(&keys, now(), &hexv(rfc, "encapsulated_request")).expect("opens");
    assert_eq!(opened.key_id, 1);
    assert_eq!(
        hex::encode(&opened.request),
        hex::encode(hexv(rfc, "request"))
    );
    let m = bhttp::Message::read_bhttp(&mut Cursor::new(&opened.request)).expect("bhttp");
    assert_eq!(m.control().method(), Some(&b"GET"[..]));
    assert_eq!(m.control().scheme(), Some(&b"https"[..]));
    assert_eq!(m.control().authority(), Some(&b"example.com"[..]));
    assert_eq!(m.control().path(), Some(&b"/"[..]));

    // The encapsulated response, with the RFC's response nonce.
    let nonce = hex::decode(
        v["derived_by_us_python_hpke_rfc9180"]["response_nonce"]
            .as_str()
            .expect("nonce"),
    )
    .expect("hex");
    assert_eq!(opened.response.nonce_len(), nonce.len());
    assert_eq!(
        nonce[..],
        hexv(rfc, "response_salt")[32..],
        "salt = enc || response_nonce"
    );
    let sealed = opened
        .response
        .encapsulate_with_nonce(&nonce, &hexv(rfc, "response"))
        .expect("seals");
    assert_eq!(
        hex::encode(sealed),
        hex::encode(hexv(rfc, "encapsulated_response"))
    );

    // One flipped bit anywhere after the header: no decryption, a key problem (400 ohttp-key).
    let mut bad = hexv(rfc, "encapsulated_request");
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let e = decapsulate(&keys, now(), &bad).expect_err("tampered");
    assert_eq!(e, DecapError::Decrypt(1));
    assert!(e.is_key_problem());
    // A wrong nonce length is refused.
    let opened = decapsulate(&keys, now(), &hexv(rfc, "encapsulated_request")).expect("opens");
    assert_eq!(
        opened.response.encapsulate_with_nonce(&[0; 12], b"x"),
        Err(EncapError::NonceLength { want: 16, got: 12 })
    );
    // Outside the key's window, or another id: refused before any cryptography.
    let windowed = KeySet::from_keys(vec![GatewayKey::from_secret(
        KeySpec {
            id: 1,
            not_before: 10,
            not_after: 20,
        },
        &sk,
    )
    .expect("key")])
    .expect("set");
    let req = hexv(rfc, "encapsulated_request");
    assert_eq!(
        decapsulate(&windowed, 20, &req).expect_err("expired"),
        DecapError::ExpiredKey(1)
    );
    assert!(decapsulate(&windowed, 19, &req).is_ok());
    let mut other = req.clone();
    other[0] = 9;
    assert_eq!(
        decapsulate(&keys, now(), &other).expect_err("unknown"),
        DecapError::UnknownKey(9)
    );
    assert_eq!(
        decapsulate(&keys, now(), &req[..40]).expect_err("short"),
        DecapError::Truncated(40)
    );
    assert!(!DecapError::Truncated(40).is_key_problem());
}

#[test]
fn rfc9292_examples_decode_and_reencode() {
    let v = load("rfc9292_examples.json");
    let ex = &v["examples"];
    let read = |h: &[u8]| bhttp::Message::read_bhttp(&mut Cursor::new(h)).expect("bhttp");
    let write = |m: &bhttp::Message, mode| {
        let mut out = Vec::new();
        m.write_bhttp(mode, &mut out).expect("write");
        out
    };

    // Known-length request: identical bytes.
    let bink = hexv(&ex["ex-bink-request"], "hex");
    let m = read(&bink);
    assert_eq!(m.control().method(), Some(&b"GET"[..]));
    assert_eq!(m.control().path(), Some(&b"/hello.txt"[..]));
    assert_eq!(m.header().get(b"host"), Some(&b"www.example.com"[..]));
    assert_eq!(m.header().get(b"accept-language"), Some(&b"en, mi"[..]));
    assert_eq!(write(&m, bhttp::Mode::KnownLength), bink);

    // Indeterminate-length request with 10 bytes of padding: the same message; re-encoded
    // without the padding.
    let bini = hexv(&ex["ex-bini-request"], "hex");
    let m2 = read(&bini);
    assert_eq!(write(&m2, bhttp::Mode::KnownLength), bink);
    let unpadded = write(&m2, bhttp::Mode::IndeterminateLength);
    assert_eq!(unpadded[..], bini[..bini.len() - 10]);
    assert!(bini[bini.len() - 10..].iter().all(|&b| b == 0));

    // Indeterminate-length response with two informational responses.
    let resp = hexv(&ex["ex-bini-response"], "hex");
    let m3 = read(&resp);
    assert_eq!(m3.control().status().map(|s| s.code()), Some(200));
    let info: Vec<u16> = m3
        .informational()
        .iter()
        .map(|i| i.status().code())
        .collect();
    assert_eq!(info, vec![102, 103]);
    assert_eq!(
        m3.content(),
        b"Hello World! My content includes a trailing CRLF.\r\n"
    );
    let re = write(&m3, bhttp::Mode::IndeterminateLength);
    assert_eq!(read(&re).content(), m3.content());
    assert_eq!(hex::encode(&re), hex::encode(&resp));

    // Known-length chunked response with a trailer: identical bytes.
    let chunked = hexv(&ex["ex-bink-chunked"], "hex");
    let m4 = read(&chunked);
    assert_eq!(m4.content(), b"This content contains CRLF.\r\n");
    assert_eq!(m4.trailer().get(b"trailer"), Some(&b"text"[..]));
    assert_eq!(write(&m4, bhttp::Mode::KnownLength), chunked);
    let extra = &v["extra_from_martinthomson_ohttp"];
    assert_eq!(
        write(&m4, bhttp::Mode::IndeterminateLength),
        hexv(extra, "chunked_indeterminate_hex")
    );

    // The RFC 9458 request: known-length and truncated (no fields, content or trailer).
    let tiny = hexv(extra, "tiny_request_known_hex");
    let m5 = read(&tiny);
    assert_eq!(m5.control().authority(), Some(&b"example.com"[..]));
    let mut full = tiny.clone();
    full.extend_from_slice(&[0, 0, 0]);
    assert_eq!(write(&m5, bhttp::Mode::KnownLength), full);
}

/// The `ohttp` crate's client against our gateway side, both AEADs; and our derivation
/// against the `ohttp` crate's `DeriveKeyPair` with an IKM computed independently (Python's
/// hmac: HKDF-SHA256 of the seed 00 01 … 1f).
#[test]
fn interoperates_with_the_ohttp_crate() {
    ohttp::init();
    let seed = Seed::from_bytes(crate::common::test_seed());
    let ikm1 = "66c5fe6221354a725aa5f95b655fc48dbfe160aa2a09e4e00e0188a395e193ff";
    let ikm2 = "6692de53178750e3a896af66f6b9ae9a36488d9c26b4c5c02347e6420c07bb63";
    assert_eq!(hex::encode(&seed.key_ikm(1)[..]), ikm1);
    assert_eq!(hex::encode(&seed.key_ikm(2)[..]), ikm2);
    let suites = vec![
        ohttp::SymmetricSuite::new(ohttp::hpke::Kdf::HkdfSha256, ohttp::hpke::Aead::Aes128Gcm),
        ohttp::SymmetricSuite::new(
            ohttp::hpke::Kdf::HkdfSha256,
            ohttp::hpke::Aead::ChaCha20Poly1305,
        ),
    ];
    let specs = [
        KeySpec {
            id: 1,
            not_before: 0,
            not_after: u64::MAX,
        },
        KeySpec {
            id: 2,
            not_before: 0,
            not_after: u64::MAX,
        },
    ];
    let keys = KeySet::derive(&seed, &specs).expect("keys");
    for (id, ikm) in [(1u8, ikm1), (2, ikm2)] {
        let theirs = ohttp::KeyConfig::derive(
            id,
            ohttp::hpke::Kem::X25519Sha256,
            suites.clone(),
            &hex::decode(ikm).expect("hex"),
        )
        .expect("derive")
        .encode()
        .expect("encode");
        let ours = keys.key_for(id, 1).expect("key").config().to_vec();
        assert_eq!(hex::encode(&ours), hex::encode(&theirs), "key {id}");
    }
    // The served list parses with the ohttp crate.
    let list = ohttp::KeyConfig::decode_list(&keys.encoded_configs(1)).expect("list");
    assert_eq!(list.len(), 2);

    for id in [1u8, 2] {
        let config = keys.key_for(id, 1).expect("key").config().to_vec();
        // AES-128-GCM (the first suite) as served; ChaCha20-Poly1305 with a config that
        // offers only it (same key).
        let mut chacha = config[..35].to_vec();
        chacha.extend_from_slice(&[0, 4, 0, 1, 0, 3]);
        for cfg in [config, chacha] {
            let client = ohttp::ClientRequest::from_encoded_config(&cfg).expect("client");
            let request = format!("request to key {id}").into_bytes();
            let (enc, client_response) = client.encapsulate(&request).expect("encapsulate");
            let opened = decapsulate(&keys, 1, &enc).expect("opens");
            assert_eq!(opened.key_id, id);
            assert_eq!(opened.request, request);
            let sealed = opened.response.encapsulate(b"the response").expect("seal");
            assert_eq!(
                client_response.decapsulate(&sealed).expect("client opens"),
                b"the response"
            );
        }
    }
}
