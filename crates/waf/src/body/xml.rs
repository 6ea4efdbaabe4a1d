//! `text/xml`, `application/xml`: the `XML` collection. `XML:/*` is the text content of the
//! document (all text nodes, in order, as libxml2's content of the root), `XML://@*` the
//! attribute values. External entities are never resolved.

use crate::variables::TxData;

/// Parses `body` into `data`'s XML fields.
pub(crate) fn parse(data: &mut TxData, body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("XML parsing error: {e}"))?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts)
        .map_err(|e| format!("XML parsing error: {e}"))?;
    let mut content = Vec::new();
    for node in doc.root_element().descendants() {
        if node.is_text() {
            content.extend_from_slice(node.text().unwrap_or_default().as_bytes());
        }
        for a in node.attributes() {
            data.xml_attrs.push(a.value().as_bytes().to_vec());
        }
    }
    data.xml_root_text = Some(content);
    Ok(())
}
