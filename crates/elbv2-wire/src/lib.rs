//! ELBv2's wire shapes (API version 2015-12-01, query protocol), generated from botocore's
//! model by `tools/codegen/query_shapes.py` into `generated.rs` (do not edit it; regenerate),
//! and what the generated code calls (the runtime shared with CloudWatch is
//! `aws_protocol::query_wire`):
//!
//! - [`Form`]: the decoded `Action=…&Name.member.1=…` parameters; [`Request::decode`] turns
//!   them into an operation's input shape, reporting missing required members and constraint
//!   violations in AWS's `ValidationError` wording.
//! - [`XmlWriter`] and [`Response::to_xml_document`]: an output shape as the XML document
//!   botocore's `QueryParser` reads (`<XResponse><XResult>…</XResult><ResponseMetadata>…`).
//!
//! Every member is `Option`; strings stay `String` (enum values are validated while decoding),
//! timestamps are epoch milliseconds.

mod generated;
pub use generated::*;

pub use aws_protocol::query_wire::*;

/// An operation's output shape.
pub trait Response: ToXml {
    const ACTION: &'static str;

    /// The response document (see [`aws_protocol::query_wire::xml_document`]).
    fn to_xml_document(&self, request_id: &str) -> Vec<u8> {
        xml_document(Self::ACTION, XML_NAMESPACE, request_id, |out| {
            self.write_xml(out)
        })
    }
}

/// The HTTP status the model gives error `code` (400 when the model does not list it).
pub fn error_http_status(code: &str) -> u16 {
    ERRORS
        .binary_search_by(|(candidate, _)| (*candidate).cmp(code))
        .map(|index| ERRORS[index].1)
        .unwrap_or(400)
}

#[cfg(test)]
mod tests;
