"""Tiny graph datasets in the real on-disk formats: Planetoid ``ind.cora.*`` files and the NYC ZIP CSVs."""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.nyc_zip_dataset import HOUSE_VALUE_BINS

CORA_FEATURES, CORA_CLASSES = 1433, 7  # the real Cora widths


def write_fake_cora(root: Path, n_train: int = 14, n_other: int = 510, n_test: int = 30, seed: int = 0) -> Path:
    """``root/Cora/raw/ind.cora.{x,tx,allx,y,ty,ally,graph,test.index}`` as Planetoid ships them (pickles + text).

    PyG's public split takes ``len(y)`` training nodes, the next 500 for validation and ``test.index`` for test,
    so ``allx`` holds at least ``len(y) + 500`` rows. Features are 0/1 bag-of-words with a class-specific word.
    """
    rng = np.random.default_rng(seed)
    n_all, n = n_train + n_other, n_train + n_other + n_test
    labels = np.arange(n) % CORA_CLASSES
    rng.shuffle(labels)
    x = (rng.random((n, CORA_FEATURES)) < 0.01).astype(np.float32)
    x[np.arange(n), labels] = 1.0  # one informative word per class
    onehot = np.eye(CORA_CLASSES, dtype=np.int64)[labels]
    graph = {i: [int(j) for j in rng.choice(n, size=3, replace=False) if j != i] for i in range(n)}
    test_index = np.arange(n_all, n)
    rng.shuffle(test_index)  # the real file lists the test nodes unsorted
    raw = Path(root) / "Cora" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    objects = {"x": x[:n_train], "allx": x[:n_all], "tx": x[n_all:], "y": onehot[:n_train],
               "ally": onehot[:n_all], "ty": onehot[n_all:], "graph": graph}
    for name, obj in objects.items():
        with (raw / f"ind.cora.{name}").open("wb") as f:
            pickle.dump(obj, f, protocol=2)
    (raw / "ind.cora.test.index").write_text("".join(f"{i}\n" for i in test_index))
    return raw


# ZIP -> borough code (1..5) of the fake NYC graph: 8 ZIPs per borough (enough for an 80/10/10 split per borough).
FAKE_ZIPS: dict[int, int] = {z: 1 + i // 8 for i, z in enumerate(
    [10001, 10002, 10003, 10004, 10005, 10006, 10007, 10009, 10451, 10452, 10453, 10454, 10455, 10456, 10457, 10458,
     11201, 11203, 11204, 11205, 11206, 11207, 11208, 11209, 11354, 11355, 11356, 11357, 11358, 11359, 11360, 11361,
     10301, 10302, 10303, 10304, 10305, 10306, 10307, 10308]
)}
# ZIPs left out of the ACS tables (population, house value, income), as single-building ZIPs are in the real data.
FAKE_ACS_MISSING: tuple[int, ...] = (10004, 11359)
# A home ZIP that is not a work ZIP: its rows are dropped, as in the seed.
FAKE_HOME_ONLY = 11999


def write_fake_nyc(root: Path, seed: int = 0) -> Path:
    """``root/nyc_zip/raw/*.csv`` in the real column layout; returns the raw folder.

    Flows mostly stay within a borough (so the graph is informative); ``initialFeat`` is the true borough except
    for every fifth ZIP; the ACS tables lack :data:`FAKE_ACS_MISSING`; the area table lists one ZIP twice
    (two polygons) and rows of every table are in a different order than the flows.
    """
    rng = np.random.default_rng(seed)
    zips = list(FAKE_ZIPS)
    rows = []
    for i, w in enumerate(zips):
        prior = FAKE_ZIPS[w] if i % 5 else FAKE_ZIPS[w] % 5 + 1
        for h in zips + [FAKE_HOME_ONLY]:
            same = h in FAKE_ZIPS and FAKE_ZIPS[h] == FAKE_ZIPS[w]
            if same or rng.random() < 0.3:
                rows.append((w, h, int(rng.integers(20, 200) if same else rng.integers(1, 10)), float(prior),
                             FAKE_ZIPS[w]))
    raw = Path(root) / "nyc_zip" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["w_zip", "h_zip", "total", "initialFeat", "true_label"]).to_csv(
        raw / "zips_merged.csv", index=False)
    acs = [z for z in reversed(zips) if z not in FAKE_ACS_MISSING] + [83]  # 83: a ZIP outside the graph
    pop_cols = ["Estimate!!Total!!Total population", "Estimate!!Total!!Total population!!AGE!!Under 5 years"]
    pop = pd.DataFrame({"ZIPCODE": acs, pop_cols[0]: rng.integers(100, 90000, len(acs)),
                        pop_cols[1]: rng.integers(0, 5000, len(acs))})
    pop.to_csv(raw / "zicode_populationByAge.csv", index=False)
    bins = {f"Estimate!!Total:!!bin {i}": rng.integers(0, 300, len(acs)) for i in range(len(HOUSE_VALUE_BINS))}
    house = pd.DataFrame({"ZIPCODE": acs, "Estimate!!Total:": sum(bins.values()), **bins})
    house.to_csv(raw / "zipcode_housePrice.csv", index=False)
    income = pd.DataFrame({"ZIPCODE": acs, "median_familyIncome(USD)": rng.uniform(2e4, 2e5, len(acs)),
                           "Estimate!!Number!!FAMILIES!!Families": rng.integers(0, 9000, len(acs))})
    income.loc[0, "median_familyIncome(USD)"] = np.nan  # an empty value, as for ZIP 83 in the real file
    income.to_csv(raw / "zipcode_income.csv", index=False)
    area_zips = zips + [zips[0]]  # first ZIP has two polygons
    pd.DataFrame({"ZIPCODE": area_zips, "AREA": rng.uniform(1e6, 1e8, len(area_zips)),
                  "COUNTY": ["Fake"] * len(area_zips)}).to_csv(raw / "zips_area.csv", index=False)
    pd.DataFrame({"ZIPCODE": zips, "totalJobs": rng.integers(10, 200000, len(zips)),
                  "POPULATION": rng.uniform(0, 1e5, len(zips))}).to_csv(raw / "zipcode_population_Jobs.csv",
                                                                          index=False)
    return raw


def write_fake_graphs(root: Path) -> Path:
    """Every graph dataset of the zoo, tiny, under ``root``."""
    write_fake_cora(root)
    write_fake_nyc(root)
    return root


def write_fake_shapefile(raw: Path) -> Path:
    """``raw/ZIP_CODE_040114.*``: one unit square per fake ZIP (needs geopandas); returns the ``.shp`` path."""
    import geopandas as gpd
    from shapely.geometry import box

    zips = list(FAKE_ZIPS)
    path = Path(raw) / "ZIP_CODE_040114.shp"
    gpd.GeoDataFrame({"ZIPCODE": [str(z) for z in zips]}, geometry=[box(i, 0, i + 1, 1) for i in range(len(zips))],
                     crs="EPSG:2263").to_file(path)
    return path
