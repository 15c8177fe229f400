//! What OpenTelemetry's environment variables hold: `key=value,…` lists
//! (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`), in the W3C
//! baggage format the specification uses, values percent-decoded.

use crate::redact::percent_decode_lossy;

/// `key1=value1,key2=value2`: the pairs, trimmed, values percent-decoded.
pub fn key_values(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.trim().to_owned(), percent_decode_lossy(value.trim())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_trimmed_and_decoded() {
        let pairs = key_values("service.name=checkout, team = payments%2Ceu ,broken,deployment.environment=prod");
        let expected = [("service.name", "checkout"), ("team", "payments,eu"), ("deployment.environment", "prod")];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
    }
}
