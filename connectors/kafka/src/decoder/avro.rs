//! The `avro` decoder: a record is one Avro datum written with the description's `dataSchema`
//! (no container header, no schema-registry prefix); `mapping` is the path of a field's value
//! through records (`customer/name`), unions, arrays (an index) and maps (a key). Avro's
//! logical dates, times and timestamps become dates, times and timestamps.

use std::borrow::Cow;

use apache_avro::Schema;
use apache_avro::types::Value as Avro;

use super::Value;
use crate::description::FieldDescription;

#[derive(Debug, Clone)]
pub struct AvroDecoder {
    schema: Schema,
    /// Per field: its name and path.
    fields: Vec<(String, Vec<String>)>,
}

impl AvroDecoder {
    /// The decoder of `fields` for datums written with the schema `schema_json`.
    pub fn new(fields: &[FieldDescription], schema_json: &str) -> Result<Self, String> {
        let schema = Schema::parse_str(schema_json)
            .map_err(|e| format!("the Avro schema does not parse: {e}"))?;
        let fields = fields
            .iter()
            .map(|field| {
                let mapping = field.mapping.as_deref().unwrap_or_default();
                let path: Vec<String> = mapping.split('/').map(str::to_string).collect();
                if !schema_has(&schema, &path) {
                    return Err(format!(
                        "field '{}': mapping '{mapping}' is not in the Avro schema",
                        field.name
                    ));
                }
                Ok((field.name.clone(), path))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { schema, fields })
    }

    pub fn decode<'a>(&self, bytes: &'a [u8], out: &mut Vec<Value<'a>>) -> Result<(), String> {
        let mut reader = bytes;
        let datum = apache_avro::from_avro_datum(&self.schema, &mut reader, None)
            .map_err(|e| format!("the record is no Avro datum of the schema: {e}"))?;
        for (name, path) in &self.fields {
            let found = path.iter().try_fold(&datum, |node, step| child(node, step));
            out.push(match found {
                Some(value) => value_of(value).map_err(|e| format!("field '{name}': {e}"))?,
                None => Value::Null,
            });
        }
        Ok(())
    }
}

impl AvroDecoder {
    /// One Avro datum of the schema with each value at its field's path; schema fields no
    /// description field writes are NULL (so they must be nullable).
    pub fn encode(&self, values: &[Value<'_>]) -> Result<Vec<u8>, String> {
        let mut record = Avro::Record(Vec::new());
        for ((name, path), value) in self.fields.iter().zip(values) {
            let (last, parents) = path.split_last().ok_or("an empty mapping")?;
            let mut node = &mut record;
            for step in parents {
                let Avro::Record(fields) = node else {
                    return Err(format!("field '{name}': mapping crosses a value"));
                };
                let at = match fields.iter().position(|(n, _)| n == step) {
                    Some(at) => at,
                    None => {
                        fields.push((step.clone(), Avro::Record(Vec::new())));
                        fields.len() - 1
                    }
                };
                node = &mut fields[at].1;
            }
            let Avro::Record(fields) = node else {
                return Err(format!("field '{name}': mapping crosses a value"));
            };
            fields.push((last.clone(), avro_value(value)));
        }
        let record = complete(record, &self.schema);
        let datum = record
            .resolve(&self.schema)
            .map_err(|e| format!("the row does not fit the Avro schema: {e}"))?;
        apache_avro::to_avro_datum(&self.schema, datum).map_err(|e| e.to_string())
    }
}

/// `value` as Avro, before it is resolved against the schema (which picks union branches
/// and logical types).
fn avro_value(value: &Value<'_>) -> Avro {
    match value {
        Value::Null => Avro::Null,
        Value::Bool(b) => Avro::Boolean(*b),
        Value::Int(i) => Avro::Long(*i),
        Value::Float(f) => Avro::Double(*f),
        Value::Text(t) => Avro::String(t.to_string()),
        Value::Bytes(b) => Avro::Bytes(b.to_vec()),
        Value::Date(days) => Avro::Int(*days),
        Value::Time(ms) => Avro::Int(*ms),
        Value::Timestamp(ms) => Avro::Long(*ms),
    }
}

/// `record` with the schema's order of fields, NULL for those it lacks.
fn complete(record: Avro, schema: &Schema) -> Avro {
    let schema = match schema {
        Schema::Union(union) => union
            .variants()
            .iter()
            .find(|v| matches!(v, Schema::Record(_)))
            .unwrap_or(schema),
        other => other,
    };
    match (record, schema) {
        (Avro::Record(mut given), Schema::Record(record)) => Avro::Record(
            record
                .fields
                .iter()
                .map(|field| {
                    let value = match given.iter().position(|(n, _)| n == &field.name) {
                        Some(at) => complete(given.swap_remove(at).1, &field.schema),
                        None => Avro::Null,
                    };
                    (field.name.clone(), value)
                })
                .collect(),
        ),
        (other, _) => other,
    }
}

/// The value under `step` of `node`, through unions.
fn child<'v>(node: &'v Avro, step: &str) -> Option<&'v Avro> {
    match node {
        Avro::Union(_, inner) => child(inner, step),
        Avro::Record(fields) => fields.iter().find(|(n, _)| n == step).map(|(_, v)| v),
        Avro::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
        Avro::Map(entries) => entries.get(step),
        _ => None,
    }
}

/// Whether `path` leads somewhere in `schema`.
fn schema_has(schema: &Schema, path: &[String]) -> bool {
    let Some((step, rest)) = path.split_first() else {
        return true;
    };
    match schema {
        Schema::Record(record) => record
            .fields
            .iter()
            .find(|f| &f.name == step)
            .is_some_and(|f| schema_has(&f.schema, rest)),
        Schema::Union(union) => union.variants().iter().any(|v| schema_has(v, path)),
        Schema::Array(array) => step.parse::<usize>().is_ok() && schema_has(&array.items, rest),
        Schema::Map(map) => schema_has(&map.types, rest),
        _ => false,
    }
}

/// An Avro value as a decoded value.
fn value_of(value: &Avro) -> Result<Value<'static>, String> {
    Ok(match value {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => Value::Bool(*b),
        Avro::Int(i) => Value::Int((*i).into()),
        Avro::Long(i) => Value::Int(*i),
        Avro::Float(f) => Value::Float((*f).into()),
        Avro::Double(f) => Value::Float(*f),
        Avro::String(s) | Avro::Enum(_, s) => Value::Text(Cow::Owned(s.clone())),
        Avro::Uuid(u) => Value::Text(Cow::Owned(u.to_string())),
        Avro::Date(days) => Value::Date(*days),
        Avro::TimeMillis(ms) => Value::Time(*ms),
        Avro::TimeMicros(us) => Value::Time((us / 1000) as i32),
        Avro::TimestampMillis(ms) | Avro::LocalTimestampMillis(ms) => Value::Timestamp(*ms),
        Avro::TimestampMicros(us) | Avro::LocalTimestampMicros(us) => {
            Value::Timestamp(us.div_euclid(1000))
        }
        Avro::TimestampNanos(ns) | Avro::LocalTimestampNanos(ns) => {
            Value::Timestamp(ns.div_euclid(1_000_000))
        }
        Avro::Union(_, inner) => value_of(inner)?,
        Avro::Bytes(_) | Avro::Fixed(..) => {
            return Err("bytes values are read as varbinary through _message".into());
        }
        other => return Err(format!("a {other:?} is not a single value")),
    })
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Record;

    use super::*;
    use crate::types::FieldType;

    const SCHEMA: &str = r#"{
      "type": "record", "name": "order", "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": {"type": "record", "name": "customer", "fields": [
          {"name": "name", "type": "string"},
          {"name": "age", "type": ["null", "int"]}]}},
        {"name": "price", "type": "double"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}}
      ]}"#;

    use crate::decoder::test_field as field;

    #[test]
    fn a_datum_decodes_along_its_paths() {
        let schema = Schema::parse_str(SCHEMA).expect("schema");
        let Schema::Record(order) = &schema else {
            panic!("a record schema");
        };
        let customer_schema = &order.fields[1].schema;
        let mut customer = Record::new(customer_schema).expect("customer");
        customer.put("name", "O'Brien");
        customer.put("age", Avro::Union(0, Box::new(Avro::Null)));
        let mut record = Record::new(&schema).expect("record");
        record.put("id", 7i64);
        record.put("customer", customer);
        record.put("price", 2.5f64);
        record.put("at", Avro::TimestampMillis(1_709_214_310_500));
        record.put("day", Avro::Date(19_782));
        let bytes = apache_avro::to_avro_datum(&schema, record).expect("encode");

        let decoder = AvroDecoder::new(
            &[
                field("id", FieldType::BigInt, "id"),
                field("name", FieldType::Varchar, "customer/name"),
                field("age", FieldType::Integer, "customer/age"),
                field("price", FieldType::Double, "price"),
                field("at", FieldType::Timestamp, "at"),
                field("day", FieldType::Date, "day"),
            ],
            SCHEMA,
        )
        .expect("decoder");
        let mut out = Vec::new();
        decoder.decode(&bytes, &mut out).expect("decode");
        assert_eq!(
            out,
            [
                Value::Int(7),
                Value::Text("O'Brien".into()),
                Value::Null,
                Value::Float(2.5),
                Value::Timestamp(1_709_214_310_500),
                Value::Date(19_782),
            ]
        );
        let error = decoder
            .decode(&bytes[..3], &mut out)
            .expect_err("cut short");
        assert!(error.contains("no Avro datum"), "{error}");
    }

    #[test]
    fn mappings_outside_the_schema_and_bad_schemas_are_refused() {
        let error = AvroDecoder::new(&[field("x", FieldType::BigInt, "customer/email")], SCHEMA)
            .expect_err("not in the schema");
        assert!(
            error.contains("field 'x': mapping 'customer/email' is not in the Avro schema"),
            "{error}"
        );
        let error = AvroDecoder::new(&[], "{\"type\": \"recrd\"}").expect_err("bad schema");
        assert!(error.contains("the Avro schema does not parse"), "{error}");
    }
}
