//! Result output as the rows arrive: `table`, `csv`, `tsv` or `json` (one object per line, as
//! the Trino CLI's; `ndjson` names it too). [`ResultWriter`] holds at most one page of rows
//! (`table`) or one batch (the others), so a result of any size prints in constant memory. A
//! table shows at most `max_rows` rows and counts the rest.

use std::io::Write;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Tsv,
    #[value(alias = "ndjson")]
    Json,
}

impl Format {
    /// The format a `\pset format` argument names.
    pub fn parse(name: &str) -> Option<Self> {
        <Self as clap::ValueEnum>::from_str(name, true).ok()
    }
}

/// Rows a table page holds before it is printed: each page is one table, its columns as wide
/// as that page needs.
const TABLE_PAGE_ROWS: usize = 1000;

/// Writes one result to `out` batch by batch.
pub enum ResultWriter<W: Write> {
    /// A statement without columns (DDL, `SET`): nothing to print.
    Nothing,
    Table {
        out: W,
        schema: SchemaRef,
        page: Vec<RecordBatch>,
        page_rows: usize,
        printed: bool,
        /// Rows still to show; the rest are only counted.
        left: usize,
    },
    Csv(Box<arrow::csv::Writer<W>>, SchemaRef, bool),
    Json(arrow::json::LineDelimitedWriter<W>),
}

impl<W: Write> ResultWriter<W> {
    pub fn new(format: Format, schema: SchemaRef, out: W) -> Self {
        Self::with_max_rows(format, schema, out, usize::MAX)
    }

    /// A writer whose table shows at most `max_rows` rows.
    pub fn with_max_rows(format: Format, schema: SchemaRef, out: W, max_rows: usize) -> Self {
        if schema.fields().is_empty() {
            return ResultWriter::Nothing;
        }
        let delimited = |out, delimiter| {
            let writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_delimiter(delimiter)
                .build(out);
            ResultWriter::Csv(Box::new(writer), schema.clone(), false)
        };
        match format {
            Format::Table => ResultWriter::Table {
                out,
                schema,
                page: Vec::new(),
                page_rows: 0,
                printed: false,
                left: max_rows,
            },
            Format::Csv => delimited(out, b','),
            Format::Tsv => delimited(out, b'\t'),
            Format::Json => ResultWriter::Json(arrow::json::LineDelimitedWriter::new(out)),
        }
    }

    /// Writes (or, for a table, pages) one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        match self {
            ResultWriter::Nothing => Ok(()),
            ResultWriter::Table {
                page,
                page_rows,
                left,
                ..
            } => {
                let shown = batch.num_rows().min(*left);
                if shown > 0 {
                    *left -= shown;
                    *page_rows += shown;
                    page.push(batch.slice(0, shown));
                }
                if *page_rows >= TABLE_PAGE_ROWS {
                    self.print_page()?;
                }
                Ok(())
            }
            ResultWriter::Csv(writer, _, wrote) => {
                *wrote = true;
                writer.write(batch)
            }
            ResultWriter::Json(writer) => writer.write(batch),
        }
    }

    /// Prints what is left and flushes; an empty result still prints its header (table, CSV).
    pub fn finish(mut self) -> Result<(), ArrowError> {
        match &mut self {
            ResultWriter::Table { page, printed, .. } if !page.is_empty() || !*printed => {
                self.print_page()?
            }
            ResultWriter::Csv(writer, schema, wrote) if !*wrote => {
                writer.write(&RecordBatch::new_empty(schema.clone()))?
            }
            ResultWriter::Json(writer) => writer.finish()?,
            _ => {}
        }
        match self {
            ResultWriter::Nothing => Ok(()),
            ResultWriter::Table { mut out, .. } => Ok(out.flush()?),
            ResultWriter::Csv(writer, ..) => Ok((*writer).into_inner().flush()?),
            ResultWriter::Json(writer) => Ok(writer.into_inner().flush()?),
        }
    }

    fn print_page(&mut self) -> Result<(), ArrowError> {
        if let ResultWriter::Table {
            out,
            schema,
            page,
            page_rows,
            printed,
            ..
        } = self
        {
            let text = if page.is_empty() {
                arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(
                    schema.clone(),
                )])?
            } else {
                arrow::util::pretty::pretty_format_batches(page)?
            };
            writeln!(out, "{text}")?;
            page.clear();
            *page_rows = 0;
            *printed = true;
        }
        Ok(())
    }
}

/// Renders a whole result to a string (for tests and small results).
pub fn render(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<String, ArrowError> {
    let mut out = Vec::new();
    let mut writer = ResultWriter::new(format, schema.clone(), &mut out);
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(values: Vec<i32>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(values))]).expect("batch")
    }

    #[test]
    fn every_format_streams_and_prints_headers_for_empty_results() {
        let schema = batch(vec![]).schema();
        let two = [batch(vec![1]), batch(vec![2])];
        assert_eq!(
            render(Format::Csv, &schema, &two).expect("csv"),
            "x\n1\n2\n"
        );
        assert_eq!(render(Format::Csv, &schema, &[]).expect("csv"), "x\n");
        let pair = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::Int32, true),
            ])),
            vec![
                Arc::new(Int32Array::from(vec![1])),
                Arc::new(Int32Array::from(vec![2])),
            ],
        )
        .expect("batch");
        assert_eq!(
            render(Format::Tsv, &pair.schema(), &[pair]).expect("tsv"),
            "a\tb\n1\t2\n"
        );
        assert_eq!(Format::parse("NDJSON"), Some(Format::Json));
        assert_eq!(Format::parse("tsv"), Some(Format::Tsv));
        assert_eq!(Format::parse("xml"), None);
        assert_eq!(
            render(Format::Json, &schema, &two).expect("json"),
            "{\"x\":1}\n{\"x\":2}\n"
        );
        let table = render(Format::Table, &schema, &two).expect("table");
        assert!(
            table.contains("| 1 |") && table.contains("| 2 |"),
            "{table}"
        );
        assert!(
            render(Format::Table, &schema, &[])
                .expect("table")
                .contains("| x |")
        );
    }

    #[test]
    fn a_table_shows_at_most_max_rows() {
        let schema = batch(vec![]).schema();
        let mut out = Vec::new();
        let mut writer = ResultWriter::with_max_rows(Format::Table, schema, &mut out, 3);
        writer.write(&batch(vec![1, 2])).expect("write");
        writer.write(&batch(vec![3, 4, 5])).expect("write");
        writer.finish().expect("finish");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("| 3 |") && !text.contains("| 4 |"), "{text}");
    }

    #[test]
    fn a_table_prints_page_by_page() {
        let schema = batch(vec![]).schema();
        let mut out = Vec::new();
        let mut writer = ResultWriter::new(Format::Table, schema, &mut out);
        writer
            .write(&batch((0..TABLE_PAGE_ROWS as i32).collect()))
            .expect("write");
        let ResultWriter::Table { page, .. } = &writer else {
            panic!("a table writer");
        };
        assert!(page.is_empty(), "a full page is printed at once");
        writer.write(&batch(vec![7])).expect("write");
        writer.finish().expect("finish");
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("| x ").count(), 2, "two pages, two headers");
    }
}
