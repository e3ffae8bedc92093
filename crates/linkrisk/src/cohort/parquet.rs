//! Parquet tables (pandas `to_parquet`, `pyarrow.parquet.write_table`): scalar columns are
//! metadata (`id`, `patient_id`, findings, ...), and each `fixed_size_list<float>` or
//! `list<float>` column is a view (float16/32/64). A Parquet file that is not the metadata
//! may still carry an `id` column, which is checked against the metadata's order.
//!
//! The file is read in record batches and each view column appended to its own `Vec<f32>`,
//! reserved once, so memory holds one copy of the embeddings plus one batch.

use std::borrow::Cow;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::Array;
use arrow_schema::{DataType, Field};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::columns::{MetadataOptions, RowNumbering, RowParser};
use super::container::{self, Contents, Member, RecordIds, Select};
use super::metadata::Metadata;
use super::npy::{self, Array2, Dtype};
use crate::error::{Error, Result};

/// Rows per record batch.
const BATCH_ROWS: usize = 8192;

/// What a Parquet file yielded: metadata when asked for, views, and record ids when a
/// non-metadata file has an `id` column.
#[derive(Debug)]
pub struct ParquetContents {
    /// The metadata, when the file was read as the metadata table.
    pub metadata: Option<Metadata>,
    /// Views and record ids.
    pub contents: Contents,
}

/// Read view columns chosen by `select`; with `as_metadata`, also parse the scalar columns
/// as the cohort's metadata (names mapped by the options). Otherwise the column the options
/// call `id`, if present, is returned as record ids.
pub fn read(
    path: &Path,
    select: &Select,
    options: &MetadataOptions,
    as_metadata: bool,
) -> Result<ParquetContents> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        Error::input(
            path,
            format!(
                "not a readable Parquet file ({e}); it may be truncated or another format: \
                 write it with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table"
            ),
        )
    })?;
    let schema = builder.schema().clone();
    let total_rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let fields: Vec<&Field> = schema.fields().iter().map(|f| f.as_ref()).collect();
    let all_names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    super::metadata::check_unique_columns(path, &all_names)?;
    let is_list = |f: &Field| list_element(f.data_type()).is_some();
    let list_names: Vec<String> = fields.iter().filter(|f| is_list(f)).map(|f| f.name().clone()).collect();
    let scalar_names: Vec<&str> = fields.iter().filter(|f| !is_list(f)).map(|f| f.name().as_str()).collect();

    let wanted = container::resolve(path, select, &list_names, "column")?;
    let mut views = Vec::with_capacity(wanted.len());
    for name in &wanted {
        let field = fields.iter().find(|f| f.name() == name).expect("resolved above");
        let element = list_element(field.data_type()).expect("a list column");
        let dtype = match element {
            DataType::Float16 => Dtype::Float16,
            DataType::Float32 => Dtype::Float32,
            DataType::Float64 => Dtype::Float64,
            other => {
                return Err(npy::unsupported_dtype(
                    &container::member_path(path, name),
                    &format!("list<{other}>"),
                    &format!("{other}"),
                ))
            }
        };
        views.push(ViewColumn { name: name.clone(), dtype, dim: None, data: Vec::new() });
    }

    let mut parser = None;
    let mut id_column = None;
    if as_metadata {
        let mut p = RowParser::new(path, &scalar_names, options, RowNumbering::ZeroBased)?;
        p.add_extra_columns(list_names.iter().filter(|n| !wanted.contains(n)).cloned());
        parser = Some(p);
    } else {
        let id_name = options.file_column("id");
        id_column = scalar_names.iter().position(|n| *n == id_name).map(|_| id_name.to_string());
    }

    // Project onto the columns needed.
    let mut needed: Vec<&str> = wanted.iter().map(String::as_str).collect();
    if let Some(p) = &parser {
        needed.extend(p.used_columns().into_iter().map(|c| scalar_names[c]));
    }
    if let Some(id) = &id_column {
        needed.push(id);
    }
    let roots: Vec<usize> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| needed.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader =
        builder.with_projection(mask).with_batch_size(BATCH_ROWS).build().map_err(|e| corrupt(path, e))?;

    let mut ids: Vec<String> = Vec::new();
    let mut row_base = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(path, e))?;
        let rows = batch.num_rows();
        if let Some(p) = parser.as_mut() {
            // Text accessors for the metadata columns, indexed like `scalar_names`.
            let mut cells: Vec<Option<CellFn<'_>>> = (0..scalar_names.len()).map(|_| None).collect();
            for c in p.used_columns() {
                let name = scalar_names[c];
                let array = batch.column_by_name(name).expect("projected");
                cells[c] = Some(cell_reader(path, name, array.as_ref())?);
            }
            for r in 0..rows {
                p.push(row_base + r, |c| cells[c].as_ref().map(|f| f(r)).unwrap_or(Cow::Borrowed("")))?;
            }
        }
        if let Some(name) = &id_column {
            let array = batch.column_by_name(name).expect("projected");
            let cell = cell_reader(path, name, array.as_ref())?;
            ids.extend((0..rows).map(|r| cell(r).trim().to_string()));
        }
        for view in views.iter_mut() {
            let array = batch.column_by_name(&view.name).expect("projected");
            view.append(path, array.as_ref(), row_base, total_rows)?;
        }
        row_base += rows;
    }

    let metadata = parser.map(RowParser::finish).transpose()?;
    let mut contents = Contents::default();
    for view in views {
        let cols = view.dim.unwrap_or(0);
        contents.arrays.push(Member {
            name: view.name,
            array: Array2 { rows: row_base, cols, dtype: view.dtype, data: view.data },
        });
    }
    if let Some(member) = id_column {
        contents.ids = Some(RecordIds { member, ids });
    }
    Ok(ParquetContents { metadata, contents })
}

/// The element type of a list-like column, or None for scalar columns.
fn list_element(data_type: &DataType) -> Option<&DataType> {
    match data_type {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => Some(f.data_type()),
        _ => None,
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::input(
        path,
        format!("cannot read the Parquet data ({e}); the file is corrupt or truncated: re-export it"),
    )
}

/// Reads row `i` of a column as text; null (and NaN) is the empty string.
type CellFn<'a> = Box<dyn Fn(usize) -> Cow<'a, str> + 'a>;

/// A text accessor for a scalar column of any type metadata can sensibly use.
fn cell_reader<'a>(path: &Path, name: &str, array: &'a dyn Array) -> Result<CellFn<'a>> {
    macro_rules! display {
        ($t:ty) => {
            if let Some(a) = array.as_primitive_opt::<$t>() {
                return Ok(Box::new(move |i| {
                    if a.is_null(i) {
                        Cow::Borrowed("")
                    } else {
                        Cow::Owned(a.value(i).to_string())
                    }
                }));
            }
        };
    }
    macro_rules! float {
        ($t:ty) => {
            if let Some(a) = array.as_primitive_opt::<$t>() {
                return Ok(Box::new(move |i| {
                    let v = f64::from(a.value(i));
                    if a.is_null(i) || v.is_nan() {
                        Cow::Borrowed("")
                    } else {
                        Cow::Owned(v.to_string())
                    }
                }));
            }
        };
    }
    if let Some(a) = array.as_string_opt::<i32>() {
        return Ok(Box::new(move |i| Cow::Borrowed(if a.is_null(i) { "" } else { a.value(i) })));
    }
    if let Some(a) = array.as_string_opt::<i64>() {
        return Ok(Box::new(move |i| Cow::Borrowed(if a.is_null(i) { "" } else { a.value(i) })));
    }
    if let Some(a) = array.as_string_view_opt() {
        return Ok(Box::new(move |i| Cow::Borrowed(if a.is_null(i) { "" } else { a.value(i) })));
    }
    display!(Int8Type);
    display!(Int16Type);
    display!(Int32Type);
    display!(Int64Type);
    display!(UInt8Type);
    display!(UInt16Type);
    display!(UInt32Type);
    display!(UInt64Type);
    float!(Float32Type);
    float!(Float64Type);
    if let Some(a) = array.as_primitive_opt::<Float16Type>() {
        return Ok(Box::new(move |i| {
            let v = a.value(i).to_f64();
            if a.is_null(i) || v.is_nan() {
                Cow::Borrowed("")
            } else {
                Cow::Owned(v.to_string())
            }
        }));
    }
    if let Some(a) = array.as_boolean_opt() {
        return Ok(Box::new(move |i| {
            Cow::Borrowed(if a.is_null(i) {
                ""
            } else if a.value(i) {
                "1"
            } else {
                "0"
            })
        }));
    }
    if let Some(d) = array.as_any_dictionary_opt() {
        let values = cell_reader(path, name, d.values().as_ref())?;
        let keys = d.normalized_keys();
        let key_array = d.keys();
        return Ok(Box::new(move |i| if key_array.is_null(i) { Cow::Borrowed("") } else { values(keys[i]) }));
    }
    Err(Error::input(
        path,
        format!(
            "column `{name}` has type {}, which linkrisk cannot read as metadata; store it as a string or a number",
            array.data_type()
        ),
    ))
}

/// A view column being gathered batch by batch.
#[derive(Debug)]
struct ViewColumn {
    name: String,
    dtype: Dtype,
    dim: Option<usize>,
    data: Vec<f32>,
}

impl ViewColumn {
    fn append(&mut self, path: &Path, array: &dyn Array, row_base: usize, total_rows: usize) -> Result<()> {
        if let Some(list) = array.as_fixed_size_list_opt() {
            let dim = list.value_length() as usize;
            self.set_dim(dim, total_rows);
            for i in 0..list.len() {
                if list.is_null(i) {
                    return Err(null_row(path, &location(&self.name, row_base + i)));
                }
                let start = list.value_offset(i) as usize;
                self.push(path, list.values().as_ref(), start, dim, row_base + i)?;
            }
            return Ok(());
        }
        macro_rules! variable {
            ($list:expr) => {{
                let list = $list;
                let offsets = list.value_offsets();
                for i in 0..list.len() {
                    if list.is_null(i) {
                        return Err(null_row(path, &location(&self.name, row_base + i)));
                    }
                    let start = offsets[i] as usize;
                    let len = (offsets[i + 1] - offsets[i]) as usize;
                    match self.dim {
                        None => self.set_dim(len, total_rows),
                        Some(dim) if dim != len => {
                            return Err(Error::input(
                                path,
                                format!(
                                    "{}: the embedding has {len} values but earlier rows have {dim}; every row of a view must have the same length",
                                    location(&self.name, row_base + i)
                                ),
                            ))
                        }
                        Some(_) => {}
                    }
                    self.push(path, list.values().as_ref(), start, len, row_base + i)?;
                }
                Ok(())
            }};
        }
        if let Some(list) = array.as_list_opt::<i32>() {
            return variable!(list);
        }
        if let Some(list) = array.as_list_opt::<i64>() {
            return variable!(list);
        }
        Err(Error::input(path, format!("column `{}` is not a list column", self.name)))
    }

    fn set_dim(&mut self, dim: usize, total_rows: usize) {
        if self.dim.is_none() {
            self.dim = Some(dim);
            self.data.reserve_exact(total_rows.saturating_mul(dim));
        }
    }

    /// Append `len` values of `values` starting at `start`.
    fn push(&mut self, path: &Path, values: &dyn Array, start: usize, len: usize, row: usize) -> Result<()> {
        if values.null_count() > 0 && (start..start + len).any(|j| values.is_null(j)) {
            return Err(Error::input(
                path,
                format!(
                    "{}: the embedding contains a null value; fill or remove that record",
                    location(&self.name, row)
                ),
            ));
        }
        if let Some(v) = values.as_primitive_opt::<Float32Type>() {
            self.data.extend_from_slice(&v.values()[start..start + len]);
        } else if let Some(v) = values.as_primitive_opt::<Float64Type>() {
            self.data.extend(v.values()[start..start + len].iter().map(|&x| x as f32));
        } else if let Some(v) = values.as_primitive_opt::<Float16Type>() {
            self.data.extend(v.values()[start..start + len].iter().map(|x| x.to_f32()));
        } else {
            return Err(Error::input(path, format!("{}: values are not floats", location(&self.name, row))));
        }
        Ok(())
    }
}

/// "row 3 (0-based), column `image`".
fn location(column: &str, row: usize) -> String {
    format!("row {row} (0-based), column `{column}`")
}

fn null_row(path: &Path, where_: &str) -> Error {
    Error::input(path, format!("{where_}: the embedding is null; every record needs a vector in every view"))
}
