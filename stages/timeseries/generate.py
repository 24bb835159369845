"""A synthetic Favorita (Kaggle `store-sales-time-series-forecasting`) dataset in the real file
format, so the same parser reads real and builtin data and every modelled effect is real.

sales = expected * lognormal noise on log1p, where expected multiplies a store x family level, a
per-store trend, weekly and yearly seasonality, paydays, holidays (national / regional / local,
transfers honoured) and promotions; stores close on Jan 1 and for one or two random stretches, and
BOOKS launches late. `builtin_info.json` records the noise so reports can state the floor.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class GeneratorSpec:
    stores: int = 5
    families: int = 8
    start: str = "2016-01-01"  # first day of train.csv
    end: str = "2017-08-15"  # last day of train.csv
    horizon: int = 16  # days of test.csv after `end`
    noise: float = 0.15  # sd of the Gaussian noise on log1p(sales)
    seed: int = 42


INFO_FILE = "builtin_info.json"
TRAIN_FILE = "train.csv"
TEST_FILE = "test.csv"
STORES_FILE = "stores.csv"
OIL_FILE = "oil.csv"
HOLIDAYS_FILE = "holidays_events.csv"
TRANSACTIONS_FILE = "transactions.csv"
ORACLE_DAYS = 16


class Family(NamedTuple):
    """How one product family sells: median units per store-day, whether it is food or drink
    (weekend and holiday lifts), whether it is sold by weight (3 decimals), yearly amplitude and
    the day of year of the yearly peak."""

    name: str
    level: float
    food: bool
    weight: bool
    amplitude: float
    peak_doy: int


# The 33 real families, in the order the generator takes them (the first 8 include the comma and
# the slash names).
FAMILIES: tuple[Family, ...] = (
    Family("GROCERY I", 2200.0, True, False, 0.06, 355),
    Family("BEVERAGES", 1600.0, True, False, 0.10, 20),
    Family("PRODUCE", 700.0, True, True, 0.05, 200),
    Family("CLEANING", 450.0, False, False, 0.04, 350),
    Family("BREAD/BAKERY", 220.0, True, False, 0.05, 330),
    Family("LIQUOR,WINE,BEER", 45.0, True, False, 0.20, 360),
    Family("SCHOOL AND OFFICE SUPPLIES", 2.5, False, False, 0.0, 240),
    Family("BOOKS", 2.0, False, False, 0.10, 250),
    Family("DAIRY", 320.0, True, False, 0.04, 100),
    Family("MEATS", 160.0, True, True, 0.07, 355),
    Family("POULTRY", 150.0, True, True, 0.07, 355),
    Family("PERSONAL CARE", 110.0, False, False, 0.04, 340),
    Family("HOME CARE", 85.0, False, False, 0.05, 340),
    Family("DELI", 95.0, True, True, 0.06, 355),
    Family("EGGS", 70.0, True, False, 0.03, 100),
    Family("FROZEN FOODS", 60.0, True, False, 0.25, 358),
    Family("SEAFOOD", 9.0, True, True, 0.15, 85),
    Family("AUTOMOTIVE", 4.0, False, False, 0.05, 330),
    Family("BEAUTY", 3.0, False, False, 0.08, 130),
    Family("HARDWARE", 1.5, False, False, 0.05, 330),
    Family("PREPARED FOODS", 40.0, True, True, 0.05, 355),
    Family("GROCERY II", 8.0, True, False, 0.10, 355),
    Family("CELEBRATION", 5.0, False, False, 0.30, 355),
    Family("HOME AND KITCHEN I", 12.0, False, False, 0.15, 350),
    Family("HOME AND KITCHEN II", 10.0, False, False, 0.15, 350),
    Family("HOME APPLIANCES", 0.8, False, False, 0.10, 350),
    Family("LADIESWEAR", 4.0, False, False, 0.12, 130),
    Family("LAWN AND GARDEN", 3.0, False, False, 0.10, 150),
    Family("LINGERIE", 4.0, False, False, 0.10, 45),
    Family("MAGAZINES", 2.0, False, False, 0.10, 250),
    Family("PET SUPPLIES", 3.0, False, False, 0.05, 350),
    Family("PLAYERS AND ELECTRONICS", 4.0, False, False, 0.20, 355),
    Family("BABY CARE", 0.3, False, False, 0.05, 100),
)
SCHOOL = "SCHOOL AND OFFICE SUPPLIES"
BOOKS = "BOOKS"

# (city, state, type, cluster); the first five hold two Quito stores, as the real chain does.
STORE_TEMPLATES: tuple[tuple[str, str, str, int], ...] = (
    ("Quito", "Pichincha", "D", 13),
    ("Guayaquil", "Guayas", "A", 17),
    ("Quito", "Pichincha", "A", 5),
    ("Cuenca", "Azuay", "B", 6),
    ("Santo Domingo", "Santo Domingo de los Tsachilas", "C", 3),
    ("Ambato", "Tungurahua", "A", 14),
    ("Guayaquil", "Guayas", "E", 10),
    ("Manta", "Manabi", "A", 11),
    ("Latacunga", "Cotopaxi", "C", 15),
    ("Machala", "El Oro", "C", 3),
    ("Loja", "Loja", "D", 4),
    ("Riobamba", "Chimborazo", "C", 7),
    ("Ibarra", "Imbabura", "C", 15),
    ("Esmeraldas", "Esmeraldas", "E", 10),
    ("Quevedo", "Los Rios", "C", 3),
    ("Puyo", "Pastaza", "C", 7),
    ("Salinas", "Santa Elena", "D", 1),
    ("Cayambe", "Pichincha", "B", 6),
    ("Babahoyo", "Los Rios", "B", 10),
    ("Guaranda", "Bolivar", "C", 15),
    ("Daule", "Guayas", "D", 1),
    ("Playas", "Guayas", "C", 3),
    ("Libertad", "Guayas", "E", 10),
    ("El Carmen", "Manabi", "C", 3),
)
TYPE_SIZE = {"A": 1.6, "B": 1.1, "C": 0.8, "D": 1.0, "E": 0.7}
CITY_DAYS: dict[str, tuple[int, int, str]] = {
    "Quito": (12, 6, "Fundacion de Quito"),
    "Guayaquil": (7, 25, "Fundacion de Guayaquil"),
    "Cuenca": (4, 12, "Fundacion de Cuenca"),
    "Santo Domingo": (7, 3, "Fundacion de Santo Domingo"),
    "Ambato": (4, 21, "Fundacion de Ambato"),
    "Manta": (11, 4, "Fundacion de Manta"),
    "Latacunga": (11, 11, "Independencia de Latacunga"),
    "Machala": (6, 25, "Fundacion de Machala"),
    "Loja": (12, 8, "Fundacion de Loja"),
    "Riobamba": (4, 21, "Cantonizacion de Riobamba"),
    "Ibarra": (9, 28, "Fundacion de Ibarra"),
    "Esmeraldas": (8, 5, "Fundacion de Esmeraldas"),
    "Quevedo": (10, 7, "Cantonizacion de Quevedo"),
    "Puyo": (5, 12, "Fundacion de Puyo"),
    "Salinas": (12, 22, "Cantonizacion de Salinas"),
    "Cayambe": (6, 23, "Cantonizacion de Cayambe"),
    "Babahoyo": (3, 27, "Fundacion de Babahoyo"),
    "Guaranda": (11, 10, "Independencia de Guaranda"),
    "Daule": (8, 1, "Cantonizacion de Daule"),
    "Playas": (7, 17, "Cantonizacion de Playas"),
    "Libertad": (12, 14, "Cantonizacion de La Libertad"),
    "El Carmen": (6, 3, "Cantonizacion de El Carmen"),
}
STATE_DAYS: dict[str, tuple[int, int, str]] = {
    "Pichincha": (7, 30, "Provincializacion de Pichincha"),
    "Guayas": (6, 18, "Provincializacion del Guayas"),
    "Azuay": (6, 25, "Provincializacion del Azuay"),
    "Santo Domingo de los Tsachilas": (11, 6, "Provincializacion de Santo Domingo"),
    "Tungurahua": (5, 3, "Provincializacion de Tungurahua"),
    "Manabi": (6, 25, "Provincializacion de Manabi"),
    "Cotopaxi": (4, 25, "Provincializacion de Cotopaxi"),
    "El Oro": (4, 23, "Provincializacion de El Oro"),
    "Loja": (6, 25, "Provincializacion de Loja"),
    "Chimborazo": (6, 25, "Provincializacion de Chimborazo"),
    "Imbabura": (6, 25, "Provincializacion de Imbabura"),
    "Esmeraldas": (11, 21, "Provincializacion de Esmeraldas"),
    "Los Rios": (10, 6, "Provincializacion de Los Rios"),
    "Pastaza": (11, 10, "Provincializacion de Pastaza"),
    "Santa Elena": (11, 7, "Provincializacion Santa Elena"),
    "Bolivar": (4, 15, "Provincializacion de Bolivar"),
}

# Effects (multipliers on expected sales).
NATIONAL_LIFT = (1.2, 1.5)  # food/drink on national Holiday/Additional/Bridge/Transfer days
LOCAL_LIFT = (1.15, 1.35)  # food/drink of the stores of that city/state
EVENT_LIFT = 1.1  # all families
NONFOOD_HOLIDAY_SHARE = 0.25  # non-food families feel a quarter of the holiday log-lift
PAYDAY_LIFT = 1.08
PROMO_LOG_LIFT = (0.15, 0.25)  # per log1p(items on promotion)
EFFECTIVE_HOLIDAY_TYPES = {"Holiday", "Additional", "Bridge", "Transfer"}


def write_store_sales(dest: Path, spec: GeneratorSpec) -> dict:
    """Write the six CSVs + builtin_info.json into the existing folder dest; return the info
    dict."""
    _check(spec)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    start, end = pd.Timestamp(spec.start), pd.Timestamp(spec.end)
    days = pd.date_range(start, end + pd.Timedelta(days=spec.horizon), freq="D")
    families = [f for f in FAMILIES[: spec.families]]
    families.sort(key=lambda f: f.name)  # the real files sort families alphabetically
    stores = _stores(spec.stores)
    holidays = _holidays(days[0], days[-1], stores)

    promo = _promotions(rng, len(days), len(stores), families)
    expected = _expected(rng, days, stores, families, holidays, promo)
    closed = _closures(rng, days, end, len(stores), families)
    expected[closed] = 0.0
    promo[closed] = 0
    sales = np.expm1(np.log1p(expected) + rng.normal(0.0, spec.noise, expected.shape))
    sales = np.maximum(sales, 0.0)
    weight = np.array([f.weight for f in families])
    sales = np.where(weight, np.rint(sales * 1000.0) / 1000.0, np.rint(sales))
    sales[closed] = 0.0

    is_train = (days <= end) & ~((days.month == 12) & (days.day == 25))
    is_test = days > end
    train = _long_frame(days[is_train], stores, families, promo[is_train], sales[is_train])
    test = _long_frame(days[is_test], stores, families, promo[is_test], None, first_id=len(train))
    train.to_csv(dest / TRAIN_FILE, index=False)
    test.to_csv(dest / TEST_FILE, index=False)
    stores.to_csv(dest / STORES_FILE, index=False)
    _oil(rng, days).to_csv(dest / OIL_FILE, index=False)
    holidays.to_csv(dest / HOLIDAYS_FILE, index=False)
    _transactions(rng, days[is_train], stores, sales[is_train]).to_csv(
        dest / TRANSACTIONS_FILE, index=False
    )

    error = np.log1p(sales[is_train]) - np.log1p(expected[is_train])
    info = {
        "noise_sigma": spec.noise,
        "series": len(stores) * len(families),
        "train_rows": len(train),
        "test_rows": len(test),
        "oracle_rmsle_last_16_days": _rms(error[-ORACLE_DAYS:]),
        "oracle_rmsle_all": _rms(error),
    }
    (dest / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info


def _check(spec: GeneratorSpec) -> None:
    """Fail early on specs the real format cannot express."""
    if not 1 <= spec.families <= len(FAMILIES):
        raise ValueError(f"families must be 1..{len(FAMILIES)}, got {spec.families}")
    if spec.stores < 1:
        raise ValueError(f"stores must be >= 1, got {spec.stores}")
    if spec.horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {spec.horizon}")
    if spec.noise < 0:
        raise ValueError(f"noise must be >= 0, got {spec.noise}")
    if pd.Timestamp(spec.end) < pd.Timestamp(spec.start):
        raise ValueError(f"end {spec.end} is before start {spec.start}")


def _rms(error: np.ndarray) -> float:
    return round(float(np.sqrt(np.mean(error**2))), 6)


def _stores(n: int) -> pd.DataFrame:
    """stores.csv: real Ecuadorian cities, cycling through the templates past their count."""
    rows = [STORE_TEMPLATES[i % len(STORE_TEMPLATES)] for i in range(n)]
    frame = pd.DataFrame(rows, columns=["city", "state", "type", "cluster"])
    frame.insert(0, "store_nbr", np.arange(1, n + 1))
    return frame


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous algorithm): Carnaval and Viernes Santo move with it."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _transfer(year: int) -> tuple[dt.date, dt.date, str]:
    """The year's transferred national holiday: the first of these on Tue-Thu moves to the
    nearest Monday (Tue) or Friday (Wed/Thu), as Ecuador's holiday law does."""
    candidates = [
        (dt.date(year, 8, 10), "Primer Grito de Independencia"),
        (dt.date(year, 5, 24), "Batalla de Pichincha"),
        (dt.date(year, 10, 9), "Independencia de Guayaquil"),
    ]
    for day, name in candidates:
        if day.weekday() == 1:
            return day, day - dt.timedelta(days=1), name
        if day.weekday() in (2, 3):
            return day, day + dt.timedelta(days=4 - day.weekday()), name
    day, name = candidates[0]
    return day, day + dt.timedelta(days=(4 - day.weekday()) % 7 or 7), name


def _bridge(year: int) -> tuple[dt.date, str]:
    """The year's bridge day: the Monday before a Tuesday holiday or the Friday after a Thursday
    one (made up for by a Saturday Work Day); else the first weekday after Jan 1."""
    holidays = [
        (dt.date(year, 1, 1), "Primer dia del ano"),
        (dt.date(year, 11, 2), "Dia de Difuntos"),  # Nov 3 is a holiday too: the pair is one
        (dt.date(year, 11, 3), "Dia de Difuntos"),
        (dt.date(year, 12, 25), "Navidad"),
    ]
    taken = {day for day, _ in holidays}
    for day, name in holidays:
        step = {1: -1, 3: 1}.get(day.weekday())
        if step is not None and day + dt.timedelta(days=step) not in taken:
            return day + dt.timedelta(days=step), name
    day = dt.date(year, 1, 2)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day, "Primer dia del ano"


def _national_days(year: int) -> list[tuple[dt.date, str, str, bool]]:
    """(date, type, description, transferred) of the year's national rows; the moved holiday
    keeps its own date with transferred=True and its Transfer row carries the celebration."""
    easter = _easter(year)
    moved, to, moved_name = _transfer(year)
    bridge, bridged = _bridge(year)
    black_friday = _nth_weekday(year, 11, 3, 4) + dt.timedelta(days=1)
    days = [
        (dt.date(year, 1, 1), "Holiday", "Primer dia del ano"),
        (bridge, "Bridge", f"Puente {bridged}"),
        (
            bridge + dt.timedelta(days=(5 - bridge.weekday()) % 7 + 7),
            "Work Day",
            f"Recupero puente {bridged}",
        ),
        (easter - dt.timedelta(days=48), "Holiday", "Carnaval"),
        (easter - dt.timedelta(days=47), "Holiday", "Carnaval"),
        (easter - dt.timedelta(days=2), "Holiday", "Viernes Santo"),
        (dt.date(year, 5, 1), "Holiday", "Dia del Trabajo"),
        (dt.date(year, 5, 24), "Holiday", "Batalla de Pichincha"),
        (dt.date(year, 8, 10), "Holiday", "Primer Grito de Independencia"),
        (dt.date(year, 10, 9), "Holiday", "Independencia de Guayaquil"),
        (dt.date(year, 11, 2), "Holiday", "Dia de Difuntos"),
        (dt.date(year, 11, 3), "Holiday", "Independencia de Cuenca"),
        (to, "Transfer", f"Traslado {moved_name}"),
        *[(dt.date(year, 12, 25 + k), "Additional", f"Navidad{k}") for k in (-4, -3, -2, -1)],
        (dt.date(year, 12, 25), "Holiday", "Navidad"),
        (dt.date(year, 12, 26), "Additional", "Navidad+1"),
        (dt.date(year, 12, 31), "Additional", "Primer dia del ano-1"),
        (_nth_weekday(year, 5, 6, 2), "Event", "Dia de la Madre"),
        (black_friday, "Event", "Black Friday"),
        (black_friday + dt.timedelta(days=3), "Event", "Cyber Monday"),
    ]
    return [(day, kind, name, (day, name) == (moved, moved_name)) for day, kind, name in days]


def _holidays(first: pd.Timestamp, last: pd.Timestamp, stores: pd.DataFrame) -> pd.DataFrame:
    """holidays_events.csv rows for every year touching first..last, sorted by date."""
    rows: list[tuple[dt.date, str, str, str, str, bool]] = []
    for year in range(first.year, last.year + 1):
        for day, kind, name, transferred in _national_days(year):
            rows.append((day, kind, "National", "Ecuador", name, transferred))
        for city in dict.fromkeys(stores["city"]):
            if city in CITY_DAYS:
                month, day, name = CITY_DAYS[city]
                rows.append((dt.date(year, month, day), "Holiday", "Local", city, name, False))
                if city == "Quito":
                    rows.append(
                        (dt.date(year, 12, 5), "Additional", "Local", city, f"{name}-1", False)
                    )
        for state in dict.fromkeys(stores["state"]):
            if state in STATE_DAYS:
                month, day, name = STATE_DAYS[state]
                rows.append((dt.date(year, month, day), "Holiday", "Regional", state, name, False))
    frame = pd.DataFrame(
        rows, columns=["date", "type", "locale", "locale_name", "description", "transferred"]
    )
    frame["date"] = pd.to_datetime(frame["date"])
    frame = frame[(frame["date"] >= first) & (frame["date"] <= last)]
    frame = frame.sort_values(["date", "locale", "description"], kind="stable")
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    return frame.reset_index(drop=True)


def _holiday_log_lift(
    rng: np.random.Generator, days: pd.DatetimeIndex, stores: pd.DataFrame, holidays: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """(days x stores) log-lift of holidays for food families, (days,) log-lift of events.
    Transferred holidays and Work Days change nothing; the Transfer row's date carries it."""
    store_log = np.zeros((len(days), len(stores)))
    event_log = np.zeros(len(days))
    index = pd.Series(np.arange(len(days)), index=days.strftime("%Y-%m-%d"))
    for row in holidays.itertuples(index=False):
        t = index[row.date]
        if row.type == "Event":
            event_log[t] = np.log(EVENT_LIFT)
            continue
        if row.transferred or row.type not in EFFECTIVE_HOLIDAY_TYPES:
            continue
        if row.locale == "National":
            store_log[t, :] += np.log(rng.uniform(*NATIONAL_LIFT))
        else:
            column = stores["city"] if row.locale == "Local" else stores["state"]
            store_log[t, (column == row.locale_name).to_numpy()] += np.log(rng.uniform(*LOCAL_LIFT))
    return store_log, event_log


def _promotions(
    rng: np.random.Generator, n_days: int, n_stores: int, families: list[Family]
) -> np.ndarray:
    """(days x stores x families) items on promotion: campaigns of 3-10 days at 1..max items,
    0 otherwise; big families run more campaigns with more items."""
    level = np.array([f.level for f in families])
    start_p = np.where(level >= 50, 0.035, 0.012)
    max_items = np.clip(np.rint(level / 5), 3, 40).astype(int)
    shape = (n_days, n_stores, len(families))
    starts = rng.random(shape) < start_p
    length = rng.integers(3, 11, shape)
    items = 1 + np.floor(rng.random(shape) * max_items).astype(int)
    campaign = np.where(starts, items, 0)
    promo = np.zeros(shape, dtype=np.int64)
    for k in range(10):
        active = np.where(length > k, campaign, 0)
        promo[k:] = np.maximum(promo[k:], active[: n_days - k])
    return promo


def _expected(
    rng: np.random.Generator,
    days: pd.DatetimeIndex,
    stores: pd.DataFrame,
    families: list[Family],
    holidays: pd.DataFrame,
    promo: np.ndarray,
) -> np.ndarray:
    """(days x stores x families) noiseless mean sales: the product of every effect."""
    n_stores, n_fam = len(stores), len(families)
    base = np.array([f.level for f in families])
    food = np.array([f.food for f in families])
    size = stores["type"].map(TYPE_SIZE).to_numpy() * rng.lognormal(0.0, 0.25, n_stores)
    level = base[None, :] * size[:, None] * rng.lognormal(0.0, 0.3, (n_stores, n_fam))

    years = (days - days[0]).days.to_numpy() / 365.25
    trend = np.clip(1.0 + rng.normal(0.05, 0.08, n_stores)[None, :] * years[:, None], 0.3, None)

    weekly = np.ones((7, n_fam))
    weekly[5] = np.where(food, rng.uniform(1.25, 1.4, n_fam), rng.uniform(1.05, 1.12, n_fam))
    weekly[6] = np.where(food, rng.uniform(1.2, 1.35, n_fam), rng.uniform(1.0, 1.1, n_fam))
    weekly[:5] = rng.uniform(0.92, 1.02, (5, n_fam))
    weekly_t = weekly[days.dayofweek.to_numpy()]

    doy = days.dayofyear.to_numpy()[:, None]
    amp = np.array([f.amplitude for f in families])[None, :]
    peak = np.array([f.peak_doy for f in families])[None, :]
    yearly = np.exp(amp * np.cos(2 * np.pi * (doy - peak) / 365.25))
    school = np.array([f.name == SCHOOL for f in families])
    # back to school in the Sierra: a strong peak from late July to September
    yearly[:, school] *= 1.0 + 5.0 * np.exp(-0.5 * ((doy - 240) / 22.0) ** 2)

    month_end = np.asarray(days.is_month_end)
    payday = np.where((days.day.to_numpy() == 15) | month_end, PAYDAY_LIFT, 1.0)

    store_log, event_log = _holiday_log_lift(rng, days, stores, holidays)
    holiday_share = np.where(food, 1.0, NONFOOD_HOLIDAY_SHARE)
    holiday = np.exp(store_log[:, :, None] * holiday_share + event_log[:, None, None])

    promo_beta = rng.uniform(*PROMO_LOG_LIFT, n_fam)
    promo_lift = np.exp(promo_beta * np.log1p(promo))

    return (
        level[None, :, :]
        * trend[:, :, None]
        * (weekly_t * yearly)[:, None, :]
        * payday[:, None, None]
        * holiday
        * promo_lift
    )


def _closures(
    rng: np.random.Generator,
    days: pd.DatetimeIndex,
    end: pd.Timestamp,
    n_stores: int,
    families: list[Family],
) -> np.ndarray:
    """(days x stores x families) True where nothing sells: every store on Jan 1, one or two
    stores for a 5-20 day stretch (kept out of the last weeks of train), BOOKS before launch."""
    closed = np.zeros((len(days), n_stores, len(families)), dtype=bool)
    closed[(days.month == 1) & (days.day == 1)] = True
    n_train = int((days <= end).sum())
    for store in rng.choice(n_stores, size=min(n_stores, int(rng.integers(1, 3))), replace=False):
        length = int(rng.integers(5, 21))
        latest = max(0, n_train - ORACLE_DAYS - length - 30)
        first = rng.integers(min(30, latest), latest + 1)
        closed[first : first + length, store] = True
    names = [f.name for f in families]
    if BOOKS in names:
        launch = int(rng.integers(183, 366))
        closed[:launch, :, names.index(BOOKS)] = True
    return closed


def _long_frame(
    days: pd.DatetimeIndex,
    stores: pd.DataFrame,
    families: list[Family],
    promo: np.ndarray,
    sales: np.ndarray | None,
    first_id: int = 0,
) -> pd.DataFrame:
    """train.csv / test.csv rows, sorted by date, store_nbr, family (C order of the arrays)."""
    n_stores, n_fam = len(stores), len(families)
    n = len(days) * n_stores * n_fam
    columns = {
        "id": np.arange(first_id, first_id + n),
        "date": np.repeat(days.strftime("%Y-%m-%d").to_numpy(), n_stores * n_fam),
        "store_nbr": np.tile(np.repeat(stores["store_nbr"].to_numpy(), n_fam), len(days)),
        "family": np.tile(np.array([f.name for f in families], dtype=object), len(days) * n_stores),
    }
    if sales is not None:
        columns["sales"] = sales.reshape(-1)
    columns["onpromotion"] = promo.reshape(-1)
    return pd.DataFrame(columns)


def _oil(rng: np.random.Generator, days: pd.DatetimeIndex) -> pd.DataFrame:
    """oil.csv: business days only, a mean-reverting walk around 47 USD with a few gaps."""
    dates = pd.bdate_range(days[0], days[-1])
    shocks = rng.normal(0.0, 0.8, len(dates))
    price = np.empty(len(dates))
    level = 47.0 + rng.normal(0.0, 3.0)
    for i, shock in enumerate(shocks):
        level = 47.0 + 0.98 * (level - 47.0) + shock
        price[i] = level
    price = np.round(np.clip(price, 20.0, 90.0), 2)
    missing = rng.random(len(dates)) < 0.03
    missing[0] = True  # as in the real file, the first day has no price
    price[missing] = np.nan
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "dcoilwtico": price})


def _transactions(
    rng: np.random.Generator, days: pd.DatetimeIndex, stores: pd.DataFrame, sales: np.ndarray
) -> pd.DataFrame:
    """transactions.csv: tickets per store-day with any sales, total sales / a store's basket."""
    total = sales.sum(axis=2)
    basket = rng.uniform(6.0, 10.0, len(stores))
    tickets = total / basket[None, :] * rng.lognormal(0.0, 0.05, total.shape)
    tickets = np.maximum(np.rint(tickets), 1).astype(np.int64)
    t, s = np.nonzero(total > 0)
    return pd.DataFrame(
        {
            "date": days.strftime("%Y-%m-%d").to_numpy()[t],
            "store_nbr": stores["store_nbr"].to_numpy()[s],
            "transactions": tickets[t, s],
        }
    )
