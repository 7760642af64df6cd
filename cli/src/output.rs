//! Result output: `table`, `csv` or `json` (one object per row).

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Renders a result.
pub fn render(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<String, arrow::error::ArrowError> {
    if schema.fields().is_empty() {
        return Ok(String::new());
    }
    match format {
        Format::Table => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                let empty = RecordBatch::new_empty(schema.clone());
                return Ok(format!(
                    "{}\n",
                    arrow::util::pretty::pretty_format_batches(&[empty])?
                ));
            }
            Ok(format!(
                "{}\n",
                arrow::util::pretty::pretty_format_batches(batches)?
            ))
        }
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                if batches.is_empty() {
                    writer.write(&RecordBatch::new_empty(schema.clone()))?;
                }
                for batch in batches {
                    writer.write(batch)?;
                }
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        Format::Json => {
            let mut out = Vec::new();
            {
                let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
                for batch in batches {
                    writer.write(batch)?;
                }
                writer.finish()?;
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
    }
}
