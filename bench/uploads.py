"""Memory of the web app while patients' and offices' big files stream through it.

Four Send Secure requests at once, each with one 20 MB PDF (the largest file allowed),
against the dev stack's own uvicorn process; its RSS peak (VmHWM, reset just before,
and a 10 ms sampler beside it) less its RSS before.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from bench.common import RssSampler, peak_rss_mib, reset_peak_rss, rss_mib, timed
from bench.lifecycle import Office
from domain.attachments import MAX_ATTACHMENT_BYTES


@dataclass
class UploadMemory:
    uploads: int
    size_mib: float
    before_mib: float
    peak_mib: float
    seconds: float
    peak_source: str

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.before_mib


async def upload_memory(office: Office, web_pid: int, uploads: int = 4) -> UploadMemory:
    patients = await office.add_patients(uploads + 1)
    # Random bytes behind a PDF header: nothing on the way can compress them.
    content = b"%PDF-1.7\n" + os.urandom(MAX_ATTACHMENT_BYTES - 9)
    # Warm-up: the first big upload's code paths, thread pool and buffers are loaded, so
    # what is measured is what each further upload costs.
    await office.send(
        patients.pop(), ("warm-up.pdf", content[: 6 * 1024 * 1024], "application/pdf")
    )
    await asyncio.sleep(1.0)
    before = rss_mib(web_pid)
    cleared = reset_peak_rss(web_pid)
    with RssSampler(web_pid) as sampler, timed() as elapsed:
        await asyncio.gather(
            *(
                office.send(patient, (f"scan-{patient.index}.pdf", content, "application/pdf"))
                for patient in patients
            )
        )
    kernel_peak = peak_rss_mib(web_pid) if cleared else 0.0
    peak = max(kernel_peak, sampler.peak)
    return UploadMemory(
        uploads=uploads,
        size_mib=len(content) / 1024 / 1024,
        before_mib=before,
        peak_mib=peak,
        seconds=elapsed[0],
        peak_source="VmHWM" if kernel_peak >= sampler.peak else "sampled VmRSS",
    )
