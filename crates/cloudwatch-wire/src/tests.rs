use super::*;

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).unwrap())
        .collect()
}

/// PutMetricData as botocore 1.44's CBOR serializer writes it (timestamp as tag 1 with an
/// integer, doubles as 64-bit floats, StorageResolution as an integer).
const BOTOCORE_PUT_METRIC_DATA: &str = "a2694e616d657370616365634170706a4d65747269634461746181a7\
    6a4d65747269634e616d65674c6174656e63796a44696d656e73696f6e7381a2644e616d656753657276696365\
    6556616c7565637765626954696d657374616d70c11a6b16bbe06656616c75657382fb3ff8000000000000fb40\
    0000000000000066436f756e747382fb3ff0000000000000fb400800000000000064556e6974675365636f6e64\
    737153746f726167655265736f6c7574696f6e01";

#[test]
fn botocore_cbor_requests_decode() {
    let body = hex_bytes(&BOTOCORE_PUT_METRIC_DATA.replace(char::is_whitespace, ""));
    // botocore's numbers have the shape's types: the body decodes straight into it.
    let direct: PutMetricDataInput = ciborium::de::from_reader(&body[..]).unwrap();
    let request: PutMetricDataInput = from_cbor(&body).unwrap();
    assert_eq!(direct, request);
    assert_eq!(request.namespace.as_deref(), Some("App"));
    let datum = &request.metric_data.unwrap()[0];
    assert_eq!(datum.metric_name.as_deref(), Some("Latency"));
    assert_eq!(datum.timestamp, Some(1_796_652_000_000));
    assert_eq!(datum.values, Some(vec![1.5, 2.0]));
    assert_eq!(datum.counts, Some(vec![1.0, 3.0]));
    assert_eq!(datum.storage_resolution, Some(1));
    assert_eq!(
        datum.dimensions.as_ref().unwrap()[0].value.as_deref(),
        Some("web")
    );
}

#[test]
fn cbor_integers_are_doubles_where_the_shape_says_double() {
    let body = to_cbor(&serde_json::json!({"Namespace": "App", "MetricData": [
        {"MetricName": "m", "Value": 3, "Values": [1, 2.5], "Counts": [2]}]}));
    let direct: PutMetricDataInput = ciborium::de::from_reader(&body[..]).unwrap();
    let datum = &direct.metric_data.unwrap()[0];
    assert_eq!(datum.value, Some(3.0));
    assert_eq!(datum.values, Some(vec![1.0, 2.5]));
    assert_eq!(datum.counts, Some(vec![2.0]));
}

#[test]
fn an_empty_cbor_body_is_an_empty_structure_and_garbage_is_an_error() {
    let request: ListMetricsInput = from_cbor(b"").unwrap();
    assert_eq!(request, ListMetricsInput::default());
    assert!(from_cbor::<ListMetricsInput>(b"\xff\x00").is_err());
}

#[test]
fn timestamps_are_tag_1_in_cbor_and_seconds_in_json() {
    let output = GetMetricDataOutput {
        metric_data_results: Some(vec![MetricDataResult {
            id: Some("m1".into()),
            timestamps: Some(vec![1_796_652_000_500]),
            values: Some(vec![2.0]),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let cbor = to_cbor(&output);
    // 0xc1 (tag 1) then a 64-bit float 1796652000.5.
    let float = 1_796_652_000.5f64.to_be_bytes();
    let mut tagged = vec![0xc1, 0xfb];
    tagged.extend_from_slice(&float);
    assert!(cbor.windows(tagged.len()).any(|window| window == tagged));
    let back: GetMetricDataOutput = from_cbor(&cbor).unwrap();
    assert_eq!(back, output);

    let json = serde_json::to_value(&output).unwrap();
    assert_eq!(
        json["MetricDataResults"][0]["Timestamps"][0],
        serde_json::json!(1_796_652_000.5)
    );
    let back: GetMetricDataOutput = serde_json::from_value(json).unwrap();
    assert_eq!(back, output);
}

#[test]
fn query_requests_decode_timestamps_and_lists() {
    let request = PutMetricDataInput::decode(&Form::parse(
        b"Action=PutMetricData&Version=2010-08-01&Namespace=App\
          &MetricData.member.1.MetricName=Latency&MetricData.member.1.Value=3\
          &MetricData.member.1.Timestamp=2026-12-07T14%3A00%3A00Z",
    ))
    .unwrap();
    let datum = &request.metric_data.unwrap()[0];
    assert_eq!(datum.value, Some(3.0));
    assert_eq!(datum.timestamp, Some(1_796_652_000_000));
}

#[test]
fn error_types_map_query_codes_to_shapes() {
    assert_eq!(
        error_type("InvalidParameterValue"),
        Some(("InvalidParameterValueException", 400, true))
    );
    assert_eq!(
        error_type("ResourceNotFound"),
        Some(("ResourceNotFound", 404, true))
    );
    assert_eq!(
        error_type("MissingParameter"),
        Some(("MissingRequiredParameterException", 400, true))
    );
}
