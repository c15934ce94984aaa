//! `cloister-witness`: a transparency-log witness ([C2SP tlog-witness]), run by a third
//! party outside the confidential VM.
//!
//! A witness keeps, for each log it is configured to trust, the latest checkpoint it
//! cosigned, and cosigns a new checkpoint only if it *extends* that one (a Merkle
//! consistency proof). Clients of the log require checkpoints cosigned by a quorum of
//! independent witnesses, so a log that shows different trees to different people (a
//! split view) is caught unless it also fools or controls those witnesses.
//!
//! # Protocol
//!
//! `POST <prefix>/add-checkpoint`, body:
//!
//! ```text
//! old <size the log believes the witness holds>
//! <consistency proof, one base64 hash a line, 0 to 63 lines>
//!
//! <the checkpoint, a signed note: origin, size, root, blank line, log signature(s)>
//! ```
//!
//! The witness answers, in the order it checks ([`witness::Witness::add_checkpoint`]):
//!
//! | status | when |
//! |---|---|
//! | 400 | the body is not of that form (or more than 63 proof lines, bad base64, not a note) |
//! | 404 | no configured log key has the checkpoint's origin as its name |
//! | 403 | no valid signature of a key trusted for that origin, or a trusted key's signature fails |
//! | 400 | the old size is larger than the checkpoint's size |
//! | 422 | a size-0 checkpoint whose root is not `SHA-256("")`; a non-empty proof from old size 0 |
//! | 409 | the old size is not the size the witness holds: body `<size>\n`, `Content-Type: text/x.tlog.size` |
//! | 422 | the consistency proof does not verify (a fork; a bigger tree that does not extend the old one; same size, another root) |
//! | 200 | cosigned: body `— <witness name> <base64 cosignature>\n` |
//!
//! The cosignature is a timestamped Ed25519 cosignature ([C2SP tlog-cosignature],
//! `cosignature/v1`, key type 0x04) over the checkpoint text. Its time is the current time,
//! and never earlier than the previous cosignature's for the same log (a clock that goes
//! back does not make a later tree look older).
//!
//! `GET <prefix>/<lowercase hex SHA-256 of the origin>/checkpoint` answers the latest
//! cosigned checkpoint of that log (the log's verified signature(s) and the witness's
//! cosignature), or 404 if the witness never cosigned one.
//!
//! [`client`] is the blocking client a log uses to call witnesses.
//!
//! # State, and its durability
//!
//! The state directory holds, per log, `<hex SHA-256 of the origin>.checkpoint`: the latest
//! cosigned checkpoint as a signed note, byte for byte what the `GET` route serves (the
//! checkpoint text, a blank line, the log signatures that verified, the witness's
//! cosignature line). A log without a file was never cosigned (size 0). The directory also
//! holds `lock`, locked exclusively while a witness runs on it.
//!
//! For each log, the check of the old size against the stored size and the replacement of
//! the stored checkpoint happen under one lock, so two concurrent requests from the same
//! old size cannot both succeed (the rollback race tlog-witness describes). The file is
//! replaced durably — written to a temporary file, fsynced, renamed over the old one, the
//! directory fsynced — *before* the cosignature is returned: a cosignature that left the
//! witness always survives a crash or power loss. If the write fails, nothing is cosigned
//! (500).
//!
//! At start the witness reads the file of every configured log and checks it: a signed
//! note, a checkpoint of that origin, cosigned by this witness's own key (a state directory
//! belongs to one witness key), log signatures that verify if their key is still
//! configured. A file that fails is a startup error naming the file: the witness never
//! silently starts again from size 0, which would let a log fork it.
//!
//! # What a witness operator must keep safe
//!
//! * **The signer key file** (`PRIVATE+KEY+…`, mode 0600, written by `cloister-witness
//!   keygen`). Whoever holds it can cosign anything as this witness, including a fork.
//!   Keep it readable only by the witness's user, back it up offline.
//! * **The state directory**, and its backups. A witness whose state is lost or rolled
//!   back can be made to cosign a fork of a tree it already cosigned. Restore only the
//!   newest copy; never run two witnesses with one key (each would hold its own state);
//!   if the state is lost for good, retire the key and announce a new one.
//! * **The list of log keys**: the witness cosigns any checkpoint those keys sign.
//!
//! [C2SP tlog-witness]: https://c2sp.org/tlog-witness
//! [C2SP tlog-cosignature]: https://c2sp.org/tlog-cosignature
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod request;
pub mod server;
pub mod state;
pub mod witness;

pub use client::{AddOutcome, ClientError, WitnessClient};
pub use server::{serve, ServerConfig};
pub use witness::{AddError, Cosigned, SetupError, Witness};
