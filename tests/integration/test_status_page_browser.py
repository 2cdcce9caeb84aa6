"""The status page as an operations team sees it: served by recon.http, rendered by headless Chromium.

Figures and alerts come from the real pure domain (events → coverage fold → figures → rules → alert
lifecycle), so the page shows what the reconcile service would. Chromium is Debian's, installed by
scripts/ops-tools.sh; without it this test fails rather than skips.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from recon.domain.config import DomainConfig
from recon.domain.events import (
    Agreement,
    BudgetSource,
    EnrolmentEvent,
    EnrolmentType,
    FunderLevel,
    Lineage,
    Programme,
    RampStep,
)
from recon.http import Readiness, serve
from reconcile.domain import (
    RuleInputs,
    ThresholdPolicy,
    compute_figures,
    evaluate,
    evolve,
    fold,
    rows_by_agreement,
)
from reconcile.status_page import CONTENT_TYPE, render

AS_OF = date(2025, 6, 20)
NOW_MS = int(datetime(2025, 6, 20, 2, 0, tzinfo=UTC).timestamp() * 1000)
BOTH = (Programme.JKK, Programme.JKM)
PAID = tuple(f"2025-{m:02d}" for m in range(1, 7))


def agreement(agreement_id: str, funder: str, region: str, quota: int, ramp: int) -> Agreement:
    return Agreement(
        agreement_id=agreement_id,
        version=1,
        funder_name=funder,
        funder_level=FunderLevel.CITY if len(region) == 4 else FunderLevel.PROVINCE,
        region_code=region,
        branch_code="PALU",
        budget_source=BudgetSource.APBD_P,
        programmes=BOTH,
        quota_workers=quota,
        budget_rupiah=quota * 16_800 * 12,
        monthly_premium_rupiah=16_800,
        period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 31),
        ramp=(RampStep("2025-01", ramp // 2), RampStep("2025-06", ramp)),
        target_population=None,
        lineage=None,
    )


def enrolled(agreement_id: str, count: int) -> list[EnrolmentEvent]:
    return [
        EnrolmentEvent(
            event_id=f"{agreement_id}-{i}",
            event_type=EnrolmentType.ENROLLED,
            occurred_at_ms=NOW_MS - 86_400_000 * 100,
            branch_code="PALU",
            agreement_id=agreement_id,
            worker_key=f"{i:032x}",
            nik_region="7271",
            programmes=BOTH,
            declared_income=1_000_000,
            coverage_start=date(2025, 1, 1),
            coverage_end=None,
            paid_months=PAID,
            amount=16_800 * len(PAID),
            termination_reason=None,
            source_system=None,
            lineage=Lineage("enrolments", 0, i, "0" * 16, 1),
        )
        for i in range(count)
    ]


def status_page() -> str:
    agreements = {
        a.agreement_id: a
        for a in (
            agreement("PKS-7271-2025", "Pemkot Palu", "7271", quota=40, ramp=40),  # 46 active: over quota
            agreement("PKS-72-2025", "Pemprov Sulawesi Tengah", "72", quota=100, ramp=90),  # 30: below plan
        )
    }
    events = enrolled("PKS-7271-2025", 46) + enrolled("PKS-72-2025", 30)
    config = DomainConfig()
    figures = compute_figures(agreements, rows_by_agreement(fold(events).values()), AS_OF, config)
    policy = ThresholdPolicy()
    signals = evaluate(RuleInputs(now_ms=NOW_MS, figures=figures, agreements=agreements), config, policy)
    alerts, _ = evolve({}, signals, NOW_MS, policy)
    return render(figures, agreements, list(alerts.values()), generated_at_ms=NOW_MS, utc_offset_minutes=480)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: run scripts/ops-tools.sh (installs Debian's chromium)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=60, check=False)


def png_pixels(path: Path) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct RGB(A) pixels of a PNG (8-bit, no interlace), with stdlib only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG format"
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        rows.append(bytes(line))
        previous = line
    colours = {row[x : x + 3] for row in rows[::8] for x in range(0, stride, channels * 8)}
    return width, height, colours


def test_the_status_page_renders_in_a_real_browser(tmp_path: Path) -> None:
    page = status_page().encode()
    with serve(
        "127.0.0.1", 0, readiness=lambda: Readiness(()), routes={"/": lambda: (CONTENT_TYPE, page)}
    ) as web:
        dom = chromium("--dump-dom", web.url + "/", profile=tmp_path / "dom")
        shot = tmp_path / "status.png"
        taken = chromium(
            f"--screenshot={shot}", "--window-size=1280,900", web.url + "/", profile=tmp_path / "png"
        )

    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    for expected in ("Pemkot Palu", "Pemprov Sulawesi Tengah", "over_quota", "below_plan", "115.0% of quota"):
        assert expected in text, f"{expected!r} not rendered"
    assert 'href="docs/runbooks/over_quota.md"' in text
    assert "<script" not in text

    assert taken.returncode == 0, taken.stderr[-2000:]
    width, height, colours = png_pixels(shot)
    assert (width, height) == (1280, 900)
    assert len(colours) > 20, "the screenshot is (nearly) blank"
    bar_red, badge_amber = bytes((0xC0, 0x39, 0x2B)), bytes((0xD8, 0x9B, 0x1A))
    assert bar_red in colours, "no over-quota bar or critical badge painted"
    assert badge_amber in colours, "no below-plan bar or warning badge painted"
