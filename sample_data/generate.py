"""Generate the sample datasets, deterministically, into sample_data/<name>/data/.

    python sample_data/generate.py

churn: a customer-churn binary classification set in 6 monthly batches; batch 6 drifts
(higher monthly charges, more support calls, a new payment mix) and churns more often.
Also churn/new.csv (July's customers, to score) and churn/labels.csv (their churn, as it
becomes known), for the README's tour.
demand: daily store demand (regression) in 6 monthly batches.

Only numpy and the standard library are used, so the output depends on the seed alone.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SEED = 20261126
CHURN_ROWS_PER_MONTH = 3600
MONTHS = 6
NEW_ROWS = 500  # new.csv / labels.csv


def _churn_batch(rng: np.random.Generator, month: int, first_id: int) -> list[list[object]]:
    n = CHURN_ROWS_PER_MONTH
    drift = month == MONTHS
    tenure = rng.gamma(2.0, 14.0, n).clip(0, 96).round().astype(int)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n, p=[0.55, 0.25, 0.20])
    payment = rng.choice(
        ["card", "bank-transfer", "e-check", "mailed-check"], n,
        p=[0.22, 0.22, 0.46, 0.10] if drift else [0.32, 0.28, 0.25, 0.15],
    )
    internet = rng.choice(["fiber", "dsl", "none"], n, p=[0.45, 0.35, 0.20])
    base = {"fiber": 85.0, "dsl": 55.0, "none": 25.0}
    monthly = np.array([base[i] for i in internet]) + rng.normal(0, 12, n)
    if drift:
        monthly = monthly * 1.18 + 6.0
    monthly = monthly.clip(15, 160).round(2)
    total = (monthly * np.maximum(tenure, 1) * rng.uniform(0.9, 1.05, n)).round(2)
    calls = rng.poisson(2.6 if drift else 1.2, n)
    partner = rng.choice(["yes", "no"], n, p=[0.48, 0.52])
    region = rng.choice(["north", "south", "east", "west"], n)
    age = rng.normal(44, 14, n).clip(18, 90).round().astype(int)
    logit = (
        -1.2 - 0.035 * tenure + 0.018 * (monthly - 60) + 0.35 * calls
        + np.where(contract == "month-to-month", 0.9, np.where(contract == "one-year", -0.3, -1.2))
        + np.where(payment == "e-check", 0.45, 0.0) - np.where(partner == "yes", 0.25, 0.0)
    )
    if drift:
        logit = logit + 0.6
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    day0 = dt.date(2026, month, 1)
    days = rng.integers(0, 28, n)
    rows: list[list[object]] = []
    for i in range(n):
        total_i: object = "" if rng.random() < 0.015 else f"{total[i]:.2f}"
        calls_i: object = "" if rng.random() < 0.02 else int(calls[i])
        age_i: object = "" if rng.random() < 0.03 else int(age[i])
        rows.append([
            f"C{first_id + i:06d}", (day0 + dt.timedelta(days=int(days[i]))).isoformat(),
            int(tenure[i]), str(contract[i]), str(payment[i]), str(internet[i]),
            f"{monthly[i]:.2f}", total_i, calls_i, str(partner[i]), str(region[i]), age_i,
            int(churned[i]),
        ])
    rows.sort(key=lambda r: (r[1], r[0]))
    return rows


CHURN_HEADER = ["customer_id", "snapshot_date", "tenure_months", "contract", "payment_method",
                "internet_service", "monthly_charges", "total_charges", "support_calls",
                "has_partner", "region", "age", "churned"]


def _demand_batch(rng: np.random.Generator, month: int) -> list[list[object]]:
    rows: list[list[object]] = []
    start = dt.date(2026, month, 1)
    end = dt.date(2026 + (month == 12), month % 12 + 1, 1)
    stores = {"S01": ("city", 120.0), "S02": ("city", 95.0), "S03": ("suburb", 70.0),
              "S04": ("suburb", 60.0), "S05": ("rural", 35.0)}
    products = {"bread": 1.0, "milk": 1.4, "coffee": 0.6, "fruit": 1.1}
    day = start
    while day < end:
        weekend = day.weekday() >= 5
        holiday = day.day == 1 or (day.month == 5 and day.day == 25)
        temperature = 8 + 14 * np.sin((day.timetuple().tm_yday - 100) / 365 * 2 * np.pi) \
            + rng.normal(0, 3)
        for store, (kind, level) in stores.items():
            for product, weight in products.items():
                promo = rng.random() < 0.12
                price = round(float(rng.uniform(1.5, 4.5) * weight * (0.8 if promo else 1.0)), 2)
                mean = level * weight * (1.25 if weekend else 1.0) * (1.4 if promo else 1.0) \
                    * (0.7 if holiday else 1.0) * (1 + 0.01 * (temperature - 10)) / price ** 0.5
                demand = max(0.0, float(rng.normal(mean, mean * 0.12)))
                temp: object = "" if rng.random() < 0.01 else f"{temperature:.1f}"
                rows.append([day.isoformat(), store, kind, product, price, int(promo),
                             int(holiday), temp, round(demand, 1)])
        day += dt.timedelta(days=1)
    return rows


DEMAND_HEADER = ["date", "store_id", "store_type", "product", "price", "promo", "holiday",
                 "temperature_c", "demand"]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    rng = np.random.default_rng(SEED)
    for month in range(1, MONTHS + 1):
        rows = _churn_batch(rng, month, first_id=(month - 1) * CHURN_ROWS_PER_MONTH + 1)
        _write(HERE / "churn" / "data" / f"churn_2026_{month:02d}.csv", CHURN_HEADER, rows)
        _write(HERE / "demand" / "data" / f"demand_2026_{month:02d}.csv", DEMAND_HEADER,
               _demand_batch(rng, month))
    # July, for the README's tour: customers to score (no label yet) and, separately, the
    # labels that arrive later. Its own seed, so the six batches above never change.
    july = _churn_batch(np.random.default_rng(SEED + 7), 7,
                        first_id=MONTHS * CHURN_ROWS_PER_MONTH + 1)[:NEW_ROWS]
    target = CHURN_HEADER.index("churned")
    _write(HERE / "churn" / "new.csv", [c for c in CHURN_HEADER if c != "churned"],
           [row[:target] + row[target + 1:] for row in july])
    _write(HERE / "churn" / "labels.csv", ["customer_id", "churned"],
           [[row[CHURN_HEADER.index("customer_id")], row[target]] for row in july])


if __name__ == "__main__":
    main()
