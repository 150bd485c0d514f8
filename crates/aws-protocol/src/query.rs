//! The AWS query protocol (ELBv2): form-encoded requests, XML responses.

/// Decodes an `application/x-www-form-urlencoded` body into ordered `(name, value)` pairs:
/// `+` is a space, `%XX` escapes are decoded (a malformed escape stays literal), invalid
/// UTF-8 becomes U+FFFD, empty pairs are skipped and a pair without `=` has an empty value.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&byte| byte == b'=') {
            Some(equals) => (decode(&pair[..equals]), decode(&pair[equals + 1..])),
            None => (decode(pair), String::new()),
        })
        .collect()
}

fn decode(encoded: &[u8]) -> String {
    let plus_as_space: Vec<u8> = encoded
        .iter()
        .map(|&byte| if byte == b'+' { b' ' } else { byte })
        .collect();
    percent_encoding::percent_decode(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

fn push_xml_escaped(out: &mut String, text: &str) {
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
}

/// An error response as query-protocol services send it:
///
/// ```xml
/// <ErrorResponse>
///   <Error>
///     <Type>Sender</Type>
///     <Code>LoadBalancerNotFound</Code>
///     <Message>One or more load balancers not found</Message>
///   </Error>
///   <RequestId>…</RequestId>
/// </ErrorResponse>
/// ```
///
/// `sender_fault` selects `Sender` (the caller's fault, HTTP 4xx) or `Receiver` (ours, 5xx).
/// No XML namespace is written: botocore matches elements by local name.
pub fn error_xml(code: &str, message: &str, request_id: &str, sender_fault: bool) -> Vec<u8> {
    let mut xml = String::with_capacity(160 + code.len() + message.len() + request_id.len());
    xml.push_str("<ErrorResponse><Error><Type>");
    xml.push_str(if sender_fault { "Sender" } else { "Receiver" });
    xml.push_str("</Type><Code>");
    push_xml_escaped(&mut xml, code);
    xml.push_str("</Code><Message>");
    push_xml_escaped(&mut xml, message);
    xml.push_str("</Message></Error><RequestId>");
    push_xml_escaped(&mut xml, request_id);
    xml.push_str("</RequestId></ErrorResponse>");
    xml.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn parse_form_decodes_botocore_bodies() {
        // What botocore sends for elbv2 DescribeLoadBalancers(Names=["alb-one", "alb two"]).
        let body = b"Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=alb-one\
                     &Names.member.2=alb+two&PageSize=5";
        assert_eq!(
            parse_form(body),
            pairs(&[
                ("Action", "DescribeLoadBalancers"),
                ("Version", "2015-12-01"),
                ("Names.member.1", "alb-one"),
                ("Names.member.2", "alb two"),
                ("PageSize", "5"),
            ])
        );
    }

    #[test]
    fn parse_form_handles_odd_input() {
        assert_eq!(parse_form(b""), pairs(&[]));
        assert_eq!(
            parse_form(b"&&a=1&&flag&=v&k=%2B%26%3D%C3%A9&bad=%zz%4&x=a=b"),
            pairs(&[
                ("a", "1"),
                ("flag", ""),
                ("", "v"),
                ("k", "+&=\u{e9}"),
                ("bad", "%zz%4"),
                ("x", "a=b"),
            ])
        );
        assert_eq!(parse_form(b"k=%FF"), pairs(&[("k", "\u{fffd}")]));
    }

    #[test]
    fn error_xml_has_the_query_error_shape() {
        assert_eq!(
            String::from_utf8(error_xml(
                "LoadBalancerNotFound",
                "One or more load balancers not found",
                "8f1d7b3e-0000-4000-8000-000000000001",
                true
            ))
            .unwrap(),
            "<ErrorResponse><Error><Type>Sender</Type><Code>LoadBalancerNotFound</Code>\
             <Message>One or more load balancers not found</Message></Error>\
             <RequestId>8f1d7b3e-0000-4000-8000-000000000001</RequestId></ErrorResponse>"
        );
        assert_eq!(
            String::from_utf8(error_xml(
                "InternalFailure",
                "a < b & \"c\" 'd'",
                "r>1",
                false
            ))
            .unwrap(),
            "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>\
             <Message>a &lt; b &amp; &quot;c&quot; &apos;d&apos;</Message></Error>\
             <RequestId>r&gt;1</RequestId></ErrorResponse>"
        );
    }
}
