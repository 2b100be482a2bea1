"""NYC ZIP commuting graph (LEHD flows between ZIP codes, borough labels) as a PyG ``InMemoryDataset``."""

import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data, InMemoryDataset, download_url

from datamodules.files import CheckedCache, content_key
from zoo.errors import DataError, DataNotFoundError

FLOWS_URL = "https://raw.githubusercontent.com/navpreetnp7/NYC-City-Delineation/8bf3958bbd5ddcf02bb6c71e0fcaf3aafbfaf2b9/data"
MAPS_URL = "https://raw.githubusercontent.com/CUSP2021-FallADS/Labs/9bf31016b11498d3c73df8d1bf341490bc5e8a15"

# file name -> (base URL, sha256), pinned; see PROVENANCE.md section 4 of the offline copies.
CSV_FILES: dict[str, tuple[str, str]] = {
    "zips_merged.csv": (FLOWS_URL, "11aed3a272b909c0b4e364980f475fa3a0415efc8d932fae1f46823a63aadb44"),
    "zicode_populationByAge.csv": (FLOWS_URL, "73aa13ffdb7b63a66e78fa8462e1f26d197d0d89c935247a5543d082e0928aa6"),
    "zipcode_housePrice.csv": (FLOWS_URL, "e7c3327ddd0d6067697705384c474e2ec19aeb9286ab79918e33800fbec01700"),
    "zips_area.csv": (FLOWS_URL, "b6a3eacc5814e409d69574694201ae6ae18e7661f54cc511c83aae99219b9045"),
    "zipcode_income.csv": (FLOWS_URL, "daeb09a1c277d92d06273c6d0df0d83433c580d11a4582ecfc8a75e4244da1bd"),
    "zipcode_population_Jobs.csv": (FLOWS_URL, "429bcf3c6a5a66ec2c123ed01d09fdcde5b75a9d8db56e32a82405e4f1cb7efd"),
}
# Only needed for the map of predictions; fetched together with the CSVs, optional afterwards.
MAP_FILES: dict[str, tuple[str, str]] = {
    "ZIP_CODE_040114.shp": (MAPS_URL, "3a24f10705ded3ee6c70f3fc36ab61250ff437db2eb04b00d964d85e4a4d1427"),
    "ZIP_CODE_040114.shx": (MAPS_URL, "5e69e494d97c1b874cfdc71b3b626639a0d6d4d4e7ce449f76d59c497316ada5"),
    "ZIP_CODE_040114.dbf": (MAPS_URL, "7320c61f6a1de1c46ca2f0927900821d8231bddf2f3470228fe72709eeb9b096"),
    "ZIP_CODE_040114.prj": (MAPS_URL, "496a9166511a534dc8eff570dac27cdc91c817fe605e463b7ca70b25e94fbfd9"),
    "ZIP_CODE_040114.sbn": (MAPS_URL, "c2d8f791d2beccaf2e297915e85d311cf42e401b3b047556d81c8c0a2cb881c6"),
    "ZIP_CODE_040114.sbx": (MAPS_URL, "dd7d262a8743b517a80e37abd343468d35a14098701ea014e46560d050739dd8"),
    "Borough Boundaries.zip": (MAPS_URL, "977e1da5f90873930cbb7d52ad554b8adf2b8fcb3570a87b09c8156dcd79e4f2"),
}

BOROUGHS: tuple[str, ...] = ("Manhattan", "Bronx", "Brooklyn", "Queens", "Staten Island")  # codes 1..5
FEATURES: tuple[str, ...] = ("population", "house_value", "area", "income", "jobs")
# Midpoints (USD) of the 26 ACS owner-occupied home value bins, "Less than $10,000" .. "$2,000,000 or more"
# (the seed notebook's list).
HOUSE_VALUE_BINS: tuple[float, ...] = (
    5000, 12500, 17500, 22500, 27500, 32500, 37500, 45000, 55000, 65000, 75000, 85000, 95000, 112500,
    137500, 162500, 187500, 225000, 275000, 350000, 450000, 625000, 875000, 1250000, 1750000, 2000000,
)


# Bump when process() changes what it builds from the same files: caches of the old version are then not read.
PROCESS_VERSION = 2


class NYCDataError(DataError):
    """A NYC ZIP input file is present but unusable (wrong checksum, missing column, bad value in a row)."""


def _rows(mask: pd.Series) -> str:
    """``line 5`` / ``lines 5, 9, 12 (and 3 more)`` of the True rows (file lines: the header is line 1)."""
    lines = [int(i) + 2 for i in mask[mask].index]
    more = f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""
    return f"line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines[:3]))}{more}"


def _check_rows(path: Path, df: pd.DataFrame, integer: Sequence[str] = (), nonnegative: Sequence[str] = (),
                codes: dict[str, tuple[int, int]] | None = None) -> None:
    """Refuse non-finite, fractional, negative or out-of-range values, naming the file, column and line."""
    for col in dict.fromkeys([*integer, *nonnegative, *(codes or {})]):
        values = df[col]
        checks = [(np.isinf(values), "is infinite")]
        if col in integer or col in (codes or {}):
            checks.append((values.notna() & (values != values.round()), "is not a whole number"))
        if col in nonnegative:
            checks.append((values < 0, "is negative"))
        if codes and col in codes:
            lo, hi = codes[col]
            checks.append((values.notna() & ~values.between(lo, hi), f"is not a code in {lo}..{hi}"))
        for bad, problem in checks:
            if bad.any():
                raise NYCDataError(f"{path}: column {col!r} {problem} at {_rows(bad)} (value {values[bad].iloc[0]:g}). Fix or "
                                   f"replace the file with the original.")


def _check_unique(path: Path, df: pd.DataFrame, keys: list[str]) -> None:
    """Refuse rows that repeat ``keys`` (one row per ZIP, one flow per ZIP pair), naming the lines."""
    repeated = df.duplicated(subset=keys, keep=False) & df[keys].notna().all(axis=1)
    if repeated.any():
        first = df[repeated].iloc[0]
        which = ", ".join(f"{k}={first[k]:g}" if isinstance(first[k], float) else f"{k}={first[k]}" for k in keys)
        raise NYCDataError(f"{path}: {'/'.join(keys)} repeats at {_rows(repeated)} (first {which}); each must "
                           f"appear once. Remove the duplicated rows or replace the file with the original.")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_csv(path: Path, columns: Sequence[str], numeric: Sequence[str]) -> pd.DataFrame:
    """Read ``columns`` of a CSV; a clear error names the file and the missing or non-numeric column."""
    df = pd.read_csv(path)
    for col in columns:
        if col not in df.columns:
            raise NYCDataError(
                f"{path}: column {col!r} is missing (found {list(df.columns)[:8]}...). The file does not have the "
                f"published layout: replace it with the original (see the sha256 list in datamodules/nyc_zip_dataset.py)."
            )
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            raise NYCDataError(
                f"{path}: column {col!r} holds non-numeric values (first at data row {int(bad.idxmax()) + 1}: "
                f"{df[col][bad].iloc[0]!r}). Fix or replace the file with the original."
            )
        df[col] = values
    df.attrs["path"] = path  # for the messages of later checks
    return df


def _by_zip(df: pd.DataFrame, value: str, how: str = "first") -> pd.Series:
    """One value per ``ZIPCODE`` (``how`` = ``first``: the table has one row per ZIP, or ``sum`` over repeated rows)."""
    path = df.attrs["path"]
    _check_rows(path, df, integer=["ZIPCODE"], nonnegative=["ZIPCODE", value])
    if how == "first":
        _check_unique(path, df, ["ZIPCODE"])
    df = df.dropna(subset=["ZIPCODE"]).astype({"ZIPCODE": "int64"})
    grouped = df.groupby("ZIPCODE")[value]
    return grouped.sum(min_count=1) if how == "sum" else grouped.first()


def read_flows(raw_dir: Path) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """The commuting graph: sorted node ZIPs, node table (label, prior) and edge table.

    Rows of ``zips_merged.csv`` whose home ZIP (``h_zip``) is not also a work ZIP (``w_zip``) are dropped, as in
    the seed (two home-only ZIPs). Nodes are the work ZIPs in ascending order.
    """
    path = raw_dir / "zips_merged.csv"
    cols = ["w_zip", "h_zip", "total", "initialFeat", "true_label"]
    flows = _read_csv(path, cols, numeric=cols)
    if flows[cols].isna().any().any():
        col = flows[cols].columns[flows[cols].isna().any()][0]
        raise NYCDataError(f"{path}: column {col!r} is empty at {_rows(flows[col].isna())}; every row needs all of "
                           f"{cols}.")
    boroughs = (1, len(BOROUGHS))
    _check_rows(path, flows, integer=["w_zip", "h_zip", "total"], nonnegative=["total"],
                codes={"true_label": boroughs, "initialFeat": boroughs})
    _check_unique(path, flows, ["w_zip", "h_zip"])
    flows = flows.astype({"w_zip": "int64", "h_zip": "int64", "true_label": "int64", "initialFeat": "int64"})
    for col in ("true_label", "initialFeat"):
        differs = flows.groupby("w_zip")[col].transform("nunique") > 1
        if differs.any():
            raise NYCDataError(f"{path}: {col} differs between the rows of work ZIP {flows.w_zip[differs].iloc[0]} "
                               f"({_rows(differs & (flows.w_zip == flows.w_zip[differs].iloc[0]))}); a ZIP has one "
                               f"borough.")
    flows = flows[flows.h_zip.isin(flows.w_zip.unique())]
    nodes = flows.groupby("w_zip").agg(label=("true_label", "first"), prior=("initialFeat", "first"))
    edges = flows.sort_values(["w_zip", "h_zip"])[["w_zip", "h_zip", "total"]].reset_index(drop=True)
    return nodes.index.to_numpy(), nodes, edges


def read_features(raw_dir: Path, zips: np.ndarray) -> pd.DataFrame:
    """Raw (unimputed, unscaled) node features, one row per ZIP in ``zips`` order; NaN where a file lacks the ZIP.

    * population: ``Estimate!!Total!!Total population`` of ``zicode_populationByAge.csv``.
    * house_value: mean of the 26 value-bin midpoints weighted by each bin's count of homes (NaN without homes).
    * area: sum of ``AREA`` over the ZIP's polygons in ``zips_area.csv`` (square feet).
    * income: ``median_familyIncome(USD)`` of ``zipcode_income.csv``.
    * jobs: ``totalJobs`` of ``zipcode_population_Jobs.csv``.
    """
    pop_col = "Estimate!!Total!!Total population"
    pop = _read_csv(raw_dir / "zicode_populationByAge.csv", ["ZIPCODE", pop_col], ["ZIPCODE", pop_col])
    house_path = raw_dir / "zipcode_housePrice.csv"
    house = pd.read_csv(house_path)
    bins = list(house.columns[2:])
    if house.columns[0] != "ZIPCODE" or len(bins) != len(HOUSE_VALUE_BINS):
        raise NYCDataError(
            f"{house_path}: expected ZIPCODE, a total column and {len(HOUSE_VALUE_BINS)} home-value bin columns, "
            f"found {len(house.columns)} columns starting {list(house.columns[:2])}."
        )
    house = _read_csv(house_path, ["ZIPCODE", *bins], ["ZIPCODE", *bins])
    _check_rows(house_path, house, nonnegative=bins)
    counts = house[bins].fillna(0).to_numpy(dtype=float)
    homes = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        house["house_value"] = np.where(homes > 0, counts @ np.asarray(HOUSE_VALUE_BINS) / homes, np.nan)
    area = _read_csv(raw_dir / "zips_area.csv", ["ZIPCODE", "AREA"], ["ZIPCODE", "AREA"])
    # A ZIP may have several polygons (their areas add up), but the same polygon twice would double a node's area
    # (the published file repeats one polygon, of ZIP 10047, which is not a node).
    _check_unique(raw_dir / "zips_area.csv", area[area.ZIPCODE.isin(zips)], ["ZIPCODE", "AREA"])
    income_col = "median_familyIncome(USD)"
    income = _read_csv(raw_dir / "zipcode_income.csv", ["ZIPCODE", income_col], ["ZIPCODE", income_col])
    jobs = _read_csv(raw_dir / "zipcode_population_Jobs.csv", ["ZIPCODE", "totalJobs"], ["ZIPCODE", "totalJobs"])
    table = pd.DataFrame(
        {
            "population": _by_zip(pop, pop_col),
            "house_value": _by_zip(house, "house_value"),
            "area": _by_zip(area, "AREA", how="sum"),
            "income": _by_zip(income, income_col),
            "jobs": _by_zip(jobs, "totalJobs"),
        }
    )
    return table.reindex(zips)[list(FEATURES)]  # rows aligned to the node order by ZIP, NaN where absent


def impute_and_scale(raw: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Median-impute missing values (per column, over the nodes that have one), then min-max scale to [0, 1].

    Returns:
        ``x [N, F]`` float32 and ``missing [N, F]`` bool (True where the value was imputed).
    """
    missing = raw.isna().to_numpy()
    filled = raw.fillna(raw.median()).fillna(0.0).to_numpy(dtype=np.float64)  # an all-empty column becomes 0
    lo, hi = filled.min(axis=0), filled.max(axis=0)
    x = (filled - lo) / np.where(hi > lo, hi - lo, 1.0)
    return x.astype(np.float32), missing


class NYCZipDataset(CheckedCache, InMemoryDataset):
    """LEHD commuting flows between the 208 NYC work ZIP codes; classify each ZIP's borough (5 classes).

    One ``Data`` graph, nodes in ascending ZIP order (every table is aligned by ZIP, never by row position):

    * ``edge_index [2, E]`` work ZIP -> home ZIP, ``edge_weight [E]`` commuters (``total``), 182 self-flows kept.
      Rows whose home ZIP is not a work ZIP are dropped (as in the seed): 208 nodes, 35,875 edges.
    * ``x [N, 5]`` each node's OWN population, mean house value, area, median family income and jobs, min-max
      scaled over the nodes. The seed notebook merged the ACS tables on the home ZIP of every flow and then took
      the first value per work ZIP (a neighbour's features), built the house value by multiplying table ROWS by the
      bin midpoints, and stacked the features in sorted-ZIP order under an adjacency in networkx insertion order;
      all three are corrected here.
    * Missing values: the ACS files (population, house value, income) lack 32 of the 208 ZIPs (mostly Manhattan
      single-building ZIPs), 4 more lack a median income, and ZIPs without owner-occupied homes have no house value.
      Each is imputed with the column's median over the nodes that have a value (no labels are used) and flagged
      in ``x_missing [N, 5]`` (bool); nothing is dropped. Area and jobs cover all nodes; a ZIP with several polygons
      gets the sum of their areas.
    * ``y [N]`` borough 0..4 (Manhattan, Bronx, Brooklyn, Queens, Staten Island; ``true_label`` - 1),
      ``initial_feat [N]`` the notebook's prior guess (``initialFeat`` - 1: the borough whose centroid is closest to
      the ZIP's centroid, right for 186 of 208 ZIPs), ``zip [N]`` the ZIP codes.

    Files (``raw_dir``): the six CSVs are required and checked against pinned sha256 sums; the ZIP shapefile and
    ``Borough Boundaries.zip`` are only used to draw maps. ``download()`` fetches them from pinned commits.

    Args:
        root: Folder holding ``raw/`` (the files) and ``processed/`` (the cached graph).
        download: Fetch missing files; when off, a missing file raises :class:`DataNotFoundError` at once.
        transform: Optional PyG transform applied on access.
    """

    def __init__(self, root: str | os.PathLike, download: bool = True, transform: Callable | None = None,
                 force_reload: bool = False) -> None:
        self.allow_download = download
        super().__init__(str(root), transform=transform, force_reload=force_reload)
        self.load(self.processed_paths[0])

    @property
    def raw_file_names(self) -> list[str]:
        return list(CSV_FILES)

    @cached_property
    def _raw_key(self) -> str:
        return content_key([Path(p) for p in self.raw_paths], PROCESS_VERSION)

    @property
    def processed_file_names(self) -> list[str]:
        # Named by the raw files' content and the processing version: an edited CSV is processed (and checked) again.
        return [f"nyc_zip_{self._raw_key}.pt"]

    @property
    def shapefile(self) -> Path:
        return Path(self.raw_dir) / "ZIP_CODE_040114.shp"

    def missing_help(self) -> str:
        return (
            f"NYC ZIP files not found in {self.raw_dir} (expected {', '.join(CSV_FILES)}; for maps also "
            f"{', '.join(MAP_FILES)}). Fix: run once with internet access and data.download=true, or copy the files "
            f"(e.g. the offline copy shared/datasets/nyc_zip/*) into that folder, or point data.data_dir (or the "
            f"ZOO_DATA_DIR environment variable) at a folder that contains nyc_zip/raw/."
        )

    def check_files(self, files: dict[str, tuple[str, str]]) -> None:
        """Raise :class:`NYCDataError` for a present file whose sha256 differs; the file is left untouched."""
        for name, (_, digest) in files.items():
            path = Path(self.raw_dir) / name
            if path.is_file() and sha256(path) != digest:
                raise NYCDataError(
                    f"{path} differs from the published file (sha256 {sha256(path)[:12]}... instead of "
                    f"{digest[:12]}...). Zoo leaves it untouched: move or delete it yourself, then run again to "
                    f"re-download or re-copy it."
                )

    def download(self) -> None:
        missing = [n for n in CSV_FILES if not (Path(self.raw_dir) / n).is_file()]
        if not self.allow_download:
            raise DataNotFoundError(self.missing_help() + f" Missing: {', '.join(missing)}. Downloading is off "
                                    f"(data.download=false).")
        self.check_files({**CSV_FILES, **MAP_FILES})
        for name, (base, digest) in {**CSV_FILES, **MAP_FILES}.items():
            path = Path(self.raw_dir) / name
            if path.is_file():
                continue
            part = path.with_name(path.name + ".part")
            try:
                download_url(f"{base}/{name.replace(' ', '%20')}", self.raw_dir, log=True, filename=part.name)
            except OSError as err:
                part.unlink(missing_ok=True)
                if name in MAP_FILES:  # maps are optional
                    continue
                raise DataNotFoundError(f"{self.missing_help()} The download of {name} failed: {err}") from err
            if sha256(part) != digest:
                part.unlink()
                raise NYCDataError(f"The download of {name} does not match its pinned sha256 {digest}.")
            shutil.move(part, path)

    def process(self) -> None:
        # Present files are parsed as they are (checksums guard downloads only); bad layouts raise NYCDataError.
        raw = Path(self.raw_dir)
        zips, nodes, edges = read_flows(raw)
        index = pd.Series(np.arange(len(zips)), index=zips)
        x, missing = impute_and_scale(read_features(raw, zips))
        data = Data(
            x=torch.from_numpy(x),
            edge_index=torch.tensor(np.stack([index[edges.w_zip].to_numpy(), index[edges.h_zip].to_numpy()])),
            edge_weight=torch.tensor(edges.total.to_numpy(), dtype=torch.float32),
            y=torch.tensor(nodes.label.to_numpy() - 1),
            initial_feat=torch.tensor(nodes.prior.to_numpy() - 1),
            x_missing=torch.tensor(missing),
            zip=torch.tensor(zips),
        )
        self.save([data], self.processed_paths[0])
