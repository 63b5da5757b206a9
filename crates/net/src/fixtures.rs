//! Pins the encoding of what nodes exchange with format fixtures
//! ([`hangar_util::fixtures`]): each message, encoded as the RPC layer sends
//! it, must equal its committed fixture `<Name>.p<NODE_PROTOCOL>.bin`, so that
//! changing a message without bumping [`NODE_PROTOCOL`] fails a test.

use hangar_util::fixtures::Fixtures;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::message::{decode, encode};
use crate::{Message, NODE_PROTOCOL};

/// Checks a request of type `M` and a response to it against the fixtures
/// `<name>.p<NODE_PROTOCOL>.bin` and `<name>Response.p<NODE_PROTOCOL>.bin`
/// (see [`check_payload`]).
pub fn check_message<M: Message>(
    fixtures: &Fixtures,
    name: &str,
    request: &M,
    response: &M::Response,
) -> Result<(), String> {
    check_payload(fixtures, name, request)?;
    check_payload(fixtures, &format!("{name}Response"), response)
}

/// Checks a value sent between nodes (a request, a response, a frame header,
/// or a list of every variant of an enum they carry), encoded as the RPC layer
/// encodes it, against the fixture `<name>.p<NODE_PROTOCOL>.bin`: the bytes
/// must be equal and the fixture must decode.
pub fn check_payload<T: Serialize + DeserializeOwned>(
    fixtures: &Fixtures,
    name: &str,
    value: &T,
) -> Result<(), String> {
    fixtures.check_wire(name, NODE_PROTOCOL, value, encode::<T>, decode::<T>)
}
