//! Arrow conversion of `tpchgen` rows: each table maps a row and a column index to a
//! [`Value`], and [`Batches`] turns a row iterator into record batches of the projected columns.

use std::fmt::{Display, Write};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Int32Builder, Int64Builder, StringBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use tpchgen::generators::{Customer, LineItem, Nation, Order, Part, PartSupp, Region, Supplier};

use crate::metadata::ColumnType;

/// One cell of a generated row.
pub(crate) enum Value<'a> {
    Key(i64),
    Int(i32),
    /// Hundredths: `DECIMAL(15, 2)` unscaled.
    Decimal(i64),
    /// Days since the Unix epoch.
    Date(i32),
    Str(&'a str),
    /// A value that `tpchgen` formats on demand (names, phones, addresses).
    Text(&'a dyn Display),
}

enum ColumnBuilder {
    Key(Int64Builder),
    Int(Int32Builder),
    Decimal(Decimal128Builder),
    Date(Date32Builder),
    Str(StringBuilder),
}

impl ColumnBuilder {
    fn new(ty: ColumnType, capacity: usize) -> Self {
        match ty {
            ColumnType::Key => Self::Key(Int64Builder::with_capacity(capacity)),
            ColumnType::Int => Self::Int(Int32Builder::with_capacity(capacity)),
            ColumnType::Decimal => Self::Decimal(
                Decimal128Builder::with_capacity(capacity).with_data_type(ty.data_type()),
            ),
            ColumnType::Date => Self::Date(Date32Builder::with_capacity(capacity)),
            ColumnType::Varchar => Self::Str(StringBuilder::with_capacity(capacity, capacity * 16)),
        }
    }

    fn append(&mut self, value: Value<'_>) {
        match (self, value) {
            (Self::Key(b), Value::Key(v)) => b.append_value(v),
            (Self::Int(b), Value::Int(v)) => b.append_value(v),
            (Self::Decimal(b), Value::Decimal(v)) => b.append_value(i128::from(v)),
            (Self::Date(b), Value::Date(v)) => b.append_value(v),
            (Self::Str(b), Value::Str(v)) => b.append_value(v),
            (Self::Str(b), Value::Text(v)) => {
                // Writing into a StringBuilder cannot fail; `append_value("")` ends the value.
                let _ = write!(b, "{v}");
                b.append_value("");
            }
            // The column tables in metadata.rs and the row functions below agree by construction;
            // the unit tests generate every table to keep it so.
            _ => unreachable!("TPC-H value does not match its column type"),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Key(b) => Arc::new(b.finish()),
            Self::Int(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Str(b) => Arc::new(b.finish()),
        }
    }
}

/// Turns generated rows into record batches of the projected columns.
pub(crate) struct Batches<I: Iterator> {
    rows: I,
    value: for<'r> fn(&'r I::Item, usize) -> Value<'r>,
    types: Vec<ColumnType>,
    projection: Vec<usize>,
    schema: SchemaRef,
    batch_size: usize,
    /// Rows still to emit when a limit was pushed down.
    remaining: Option<usize>,
}

impl<I: Iterator> Batches<I> {
    pub(crate) fn new(
        rows: I,
        value: for<'r> fn(&'r I::Item, usize) -> Value<'r>,
        all_types: &[ColumnType],
        projection: Vec<usize>,
        schema: SchemaRef,
        batch_size: usize,
        limit: Option<usize>,
    ) -> Self {
        let types = projection.iter().map(|&i| all_types[i]).collect();
        Self {
            rows,
            value,
            types,
            projection,
            schema,
            batch_size: batch_size.max(1),
            remaining: limit,
        }
    }
}

impl<I: Iterator> Iterator for Batches<I> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let want = self
            .remaining
            .map_or(self.batch_size, |r| r.min(self.batch_size));
        if want == 0 {
            return None;
        }
        let mut builders: Vec<_> = self
            .types
            .iter()
            .map(|&ty| ColumnBuilder::new(ty, want))
            .collect();
        let mut rows = 0;
        for row in self.rows.by_ref().take(want) {
            for (builder, &column) in builders.iter_mut().zip(&self.projection) {
                builder.append((self.value)(&row, column));
            }
            rows += 1;
        }
        if rows == 0 {
            return None;
        }
        if let Some(remaining) = self.remaining.as_mut() {
            *remaining -= rows;
        }
        let columns = builders.iter_mut().map(ColumnBuilder::finish).collect();
        let options =
            datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
        Some(
            RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
                .map_err(Into::into),
        )
    }
}

pub(crate) fn nation<'a>(r: &'a Nation<'_>, c: usize) -> Value<'a> {
    match c {
        0 => Value::Key(r.n_nationkey),
        1 => Value::Str(r.n_name),
        2 => Value::Key(r.n_regionkey),
        _ => Value::Str(r.n_comment),
    }
}

pub(crate) fn region<'a>(r: &'a Region<'_>, c: usize) -> Value<'a> {
    match c {
        0 => Value::Key(r.r_regionkey),
        1 => Value::Str(r.r_name),
        _ => Value::Str(r.r_comment),
    }
}

pub(crate) fn part<'a>(r: &'a Part<'_>, c: usize) -> Value<'a> {
    match c {
        0 => Value::Key(r.p_partkey),
        1 => Value::Text(&r.p_name),
        2 => Value::Text(&r.p_mfgr),
        3 => Value::Text(&r.p_brand),
        4 => Value::Str(r.p_type),
        5 => Value::Int(r.p_size),
        6 => Value::Str(r.p_container),
        7 => Value::Decimal(r.p_retailprice.0),
        _ => Value::Str(r.p_comment),
    }
}

pub(crate) fn supplier<'a>(r: &'a Supplier, c: usize) -> Value<'a> {
    match c {
        0 => Value::Key(r.s_suppkey),
        1 => Value::Text(&r.s_name),
        2 => Value::Text(&r.s_address),
        3 => Value::Key(r.s_nationkey),
        4 => Value::Text(&r.s_phone),
        5 => Value::Decimal(r.s_acctbal.0),
        _ => Value::Str(&r.s_comment),
    }
}

pub(crate) fn partsupp<'a>(r: &'a PartSupp<'_>, c: usize) -> Value<'a> {
    match c {
        0 => Value::Key(r.ps_partkey),
        1 => Value::Key(r.ps_suppkey),
        2 => Value::Int(r.ps_availqty),
        3 => Value::Decimal(r.ps_supplycost.0),
        _ => Value::Str(r.ps_comment),
    }
}

pub(crate) fn customer<'a>(r: &'a Customer<'_>, c: usize) -> Value<'a> {
    match c {
        0 => Value::Key(r.c_custkey),
        1 => Value::Text(&r.c_name),
        2 => Value::Text(&r.c_address),
        3 => Value::Key(r.c_nationkey),
        4 => Value::Text(&r.c_phone),
        5 => Value::Decimal(r.c_acctbal.0),
        6 => Value::Str(r.c_mktsegment),
        _ => Value::Str(r.c_comment),
    }
}

pub(crate) fn orders<'a>(r: &'a Order<'_>, c: usize) -> Value<'a> {
    match c {
        0 => Value::Key(r.o_orderkey),
        1 => Value::Key(r.o_custkey),
        2 => Value::Str(r.o_orderstatus.as_str()),
        3 => Value::Decimal(r.o_totalprice.0),
        4 => Value::Date(r.o_orderdate.to_unix_epoch()),
        5 => Value::Str(r.o_orderpriority),
        6 => Value::Text(&r.o_clerk),
        7 => Value::Int(r.o_shippriority),
        _ => Value::Str(r.o_comment),
    }
}

pub(crate) fn lineitem<'a>(r: &'a LineItem<'_>, c: usize) -> Value<'a> {
    match c {
        0 => Value::Key(r.l_orderkey),
        1 => Value::Key(r.l_partkey),
        2 => Value::Key(r.l_suppkey),
        3 => Value::Int(r.l_linenumber),
        4 => Value::Decimal(r.l_quantity * 100),
        5 => Value::Decimal(r.l_extendedprice.0),
        6 => Value::Decimal(r.l_discount.0),
        7 => Value::Decimal(r.l_tax.0),
        8 => Value::Str(r.l_returnflag),
        9 => Value::Str(r.l_linestatus),
        10 => Value::Date(r.l_shipdate.to_unix_epoch()),
        11 => Value::Date(r.l_commitdate.to_unix_epoch()),
        12 => Value::Date(r.l_receiptdate.to_unix_epoch()),
        13 => Value::Str(r.l_shipinstruct),
        14 => Value::Str(r.l_shipmode),
        _ => Value::Str(r.l_comment),
    }
}
