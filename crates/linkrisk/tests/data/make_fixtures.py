"""Make the small input-format fixtures under crates/linkrisk/tests/data/ and the values the
Rust tests expect (expected.json). Run from the repository root:

    /work/venv/bin/python crates/linkrisk/tests/data/make_fixtures.py

The fixtures are committed; the tests never run Python. Expected values are what numpy
(not linkrisk) says each file holds, converted to float32 the way numpy's astype does
(round to nearest even); float16 and bfloat16 values are exact in float32.
"""

import json
import os
import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import safetensors
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20240611)

FINDINGS = [
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
]

expected = {
    "_source": f"numpy {np.__version__}, pyarrow {pa.__version__}, pandas {pd.__version__}, "
               f"safetensors {safetensors.__version__}; crates/linkrisk/tests/data/make_fixtures.py",
}


def path(*parts):
    p = os.path.join(HERE, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def record(key, arr32, dtype):
    """Expected float32 values of an array, row-major."""
    arr32 = np.ascontiguousarray(arr32, dtype=np.float32)
    expected[key] = {
        "rows": int(arr32.shape[0]),
        "cols": int(arr32.shape[1]),
        "dtype": dtype,
        "data": [float(v) for v in arr32.ravel()],
    }


# Values with varied magnitude and sign, none all-zero.
base = rng.normal(size=(5, 4)) * np.array([1.0, 1e-3, 10.0, 0.5])
base[0, 0] = -0.0

# --- .npy ---------------------------------------------------------------------------
f32 = base.astype(np.float32)
np.save(path("npy", "f32.npy"), f32)
record("npy/f32.npy", f32, "float32")

f16 = base.astype(np.float16)
np.save(path("npy", "f16.npy"), f16)
record("npy/f16.npy", f16.astype(np.float32), "float16")

f64 = base.astype(np.float64)
np.save(path("npy", "f64.npy"), f64)
record("npy/f64.npy", f64.astype(np.float32), "float64")

f32be = base.astype(">f4")
np.save(path("npy", "f32_big_endian.npy"), f32be)
record("npy/f32_big_endian.npy", f32be.astype(np.float32), "float32")

# --- .npz (stored and deflated) ---------------------------------------------------------
image = rng.normal(size=(4, 3)).astype(np.float32)
report = rng.normal(size=(4, 2)).astype(np.float16)
ids = np.array(["r0", "r1", "r2", "r3"])
np.savez(path("npz", "views.npz"), image=image, report=report, ids=ids)
np.savez_compressed(path("npz", "views_compressed.npz"), image=image, report=report, ids=ids)
for name in ["views.npz", "views_compressed.npz"]:
    record(f"npz/{name}:image", image, "float32")
    record(f"npz/{name}:report", report.astype(np.float32), "float16")
expected["npz/ids"] = ids.tolist()

# --- safetensors ------------------------------------------------------------------------
st_image = rng.normal(size=(4, 3)).astype(np.float32)
st_report = rng.normal(size=(4, 2)).astype(np.float16)
st_double = rng.normal(size=(4, 2)).astype(np.float64)
st_ids = np.array([10, 11, 12, 13], dtype=np.int64)
save_file({"image": st_image, "report": st_report, "double": st_double, "ids": st_ids},
          path("safetensors", "views.safetensors"))
record("safetensors/views.safetensors:image", st_image, "float32")
record("safetensors/views.safetensors:report", st_report.astype(np.float32), "float16")
record("safetensors/views.safetensors:double", st_double.astype(np.float32), "float64")
expected["safetensors/ids"] = [str(i) for i in st_ids]

# bfloat16: numpy has no bfloat16, so write the file by hand (what
# safetensors.torch.save_file writes for a torch.bfloat16 tensor): the top 16 bits of float32.
bf_src = rng.normal(size=(3, 2)).astype(np.float32)
bf_bits = (bf_src.view(np.uint32) >> 16).astype(np.uint16)
bf_as_f32 = (bf_bits.astype(np.uint32) << 16).view(np.float32)
header = json.dumps({"emb": {"dtype": "BF16", "shape": [3, 2], "data_offsets": [0, bf_bits.nbytes]}})
header += " " * ((8 - len(header) % 8) % 8)
with open(path("safetensors", "bf16.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(header)))
    f.write(header.encode())
    f.write(bf_bits.astype("<u2").tobytes())
record("safetensors/bf16.safetensors:emb", bf_as_f32, "bfloat16")

# --- Parquet ----------------------------------------------------------------------------
meta = {
    "id": ["r0", "r1", "r2", "r3"],
    "patient_id": [1001, 1001, 1002, 1003],
    "study_id": ["s1", "s2", "s1", "s1"],
    "split": ["train", "train", "test", "external"],
    "sex": ["F", "F", None, "M"],
    "age": [61.5, 62.0, None, 45.0],
    "race": ["White", "White", "Black", None],
}
labels = np.full((4, 14), np.nan)
labels[0, :] = 0.0
labels[0, 0] = 1.0
labels[1, 3] = 1.0
labels[1, 10] = -1.0
labels[2, 13] = 1.0
labels[3, 2] = 0.0
for k, finding in enumerate(FINDINGS):
    meta[finding] = labels[:, k]
pq_fixed = rng.normal(size=(4, 3)).astype(np.float32)
pq_double = rng.normal(size=(4, 2)).astype(np.float64)

columns = {k: pa.array(v) for k, v in meta.items()}
columns["image"] = pa.FixedSizeListArray.from_arrays(pa.array(pq_fixed.ravel(), pa.float32()), 3)
columns["report"] = pa.FixedSizeListArray.from_arrays(pa.array(pq_double.ravel(), pa.float64()), 2)
pq.write_table(pa.table(columns), path("parquet", "fixed_size_list.parquet"))
record("parquet/fixed_size_list.parquet:image", pq_fixed, "float32")
record("parquet/fixed_size_list.parquet:report", pq_double.astype(np.float32), "float64")

# The pandas route: a column of float32 arrays becomes list<float>; NaN marks blank labels.
df = pd.DataFrame(meta)
df["image"] = list(pq_fixed)
df.to_parquet(path("parquet", "list.parquet"), index=False)
assert pq.read_schema(path("parquet", "list.parquet")).field("image").type == pa.list_(pa.float32())
record("parquet/list.parquet:image", pq_fixed, "float32")

expected["metadata"] = {
    "ids": meta["id"],
    "patient_ids": [str(p) for p in meta["patient_id"]],
    "study_ids": meta["study_id"],
    "splits": meta["split"],
    "sex": meta["sex"],
    "age": meta["age"],
    "race": meta["race"],
    # 1 / 0 / -1 / null (blank) per record, CheXpert order
    "findings": [[None if np.isnan(v) else int(v) for v in row] for row in labels],
}

# --- A cohort described by cohort.toml --------------------------------------------------
# Renamed columns, split values mapped, views from two containers, ids carried by the npz.
c_meta = pd.DataFrame({
    "dicom_id": ["d0", "d1", "d2", "d3", "d4"],
    "subject_id": ["p0", "p0", "p1", "p2", "p2"],
    "study": ["a", "b", "a", "a", "a"],
    "fold": ["training", "training", "validate", "test", "test"],
    "age": [70, 71, 35, 50, 50],
})
c_meta.to_parquet(path("cohort", "labels.parquet"), index=False)
c_image = rng.normal(size=(5, 4)).astype(np.float32)
c_report = rng.normal(size=(5, 3)).astype(np.float16)
save_file({"embeddings": c_image}, path("cohort", "img.safetensors"))
# pandas strings are object arrays (pickled in .npz, unreadable): save ids as str.
np.savez(path("cohort", "text.npz"), report=c_report, ids=c_meta["dicom_id"].to_numpy(dtype=str))
with open(path("cohort", "cohort.toml"), "w") as f:
    f.write('''# Made by make_fixtures.py: a cohort whose files do not follow the default layout.
metadata = "labels.parquet"

[views]
image = "img.safetensors:embeddings"
report = "text.npz:report"

[columns]
id = "dicom_id"
patient_id = "subject_id"
study_id = "study"
split = "fold"

[splits]
train = "training"
test = ["validate", "test"]
''')
with open(path("cohort", "README.txt"), "w") as f:
    f.write("Not a view: listed as an ignored file by linkrisk inspect.\n")
record("cohort:image", c_image, "float32")
record("cohort:report", c_report.astype(np.float32), "float16")

# --- Bad inputs, as real libraries write them (the CLI tests expect exit code 2) -----------
np.save(path("bad", "int64.npy"), np.arange(8, dtype=np.int64).reshape(4, 2))
np.save(path("bad", "complex64.npy"), np.ones((4, 2), dtype=np.complex64))
np.save(path("bad", "fortran.npy"), np.asfortranarray(rng.normal(size=(4, 2)).astype(np.float32)))
save_file({"image": np.ones((4, 2), dtype=np.complex64)}, path("bad", "complex64.safetensors"))
# pandas string columns become object arrays, which np.savez pickles.
np.savez(path("bad", "object_ids.npz"), image=rng.normal(size=(4, 2)).astype(np.float32),
         ids=np.array(["r0", "r1", "r2", "r3"], dtype=object))
ragged = {k: pa.array(v) for k, v in meta.items() if k in ("id", "patient_id")}
ragged["image"] = pa.array([[1.0, 2.0, 3.0, 4.0], [1.0, 0.5, 0.0, 2.0], [1.0, 2.0, 3.0], [4.0, 3.0, 2.0, 1.0]],
                           pa.list_(pa.float32()))
pq.write_table(pa.table(ragged), path("bad", "ragged_list.parquet"))
nulls = {k: pa.array(v) for k, v in meta.items() if k in ("id", "patient_id")}
nulls["image"] = pa.array([[1.0, 2.0], None, [1.0, 2.0], [4.0, 3.0]], pa.list_(pa.float32()))
pq.write_table(pa.table(nulls), path("bad", "null_embedding.parquet"))

with open(path("expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
    f.write("\n")
print("wrote fixtures under", HERE)
