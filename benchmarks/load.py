"""Load: N concurrent clients × M clicks, each click on a different image, against ``segfill serve`` on 127.0.0.1.

    .venv/bin/python benchmarks/load.py                                   # 4 clients × 20 clicks, caches 8 and 32 MiB
    .venv/bin/python benchmarks/load.py --clients 8 --clicks 10 --cache-mib 16 --deadline-s 300

What runs: the real standalone server (``python -m segfill serve``, gradio UI and REST API) in its own
process, with a SAM built for the benchmark (segment-anything's architecture at the official 1024-px input,
a small encoder: 64 channels, windowed attention, random weights; an image embedding is 1 MiB, vit_b's is
4 MiB) loaded through ``--sam-checkpoint``. Each client is a thread with
its own HTTP connection; every click is ``POST /segfill/v1/mask`` with a new image (so every click encodes,
and the shared embedding cache fills, then evicts). Bounded: at most ``clients × clicks`` requests, each with
a timeout, and the whole run stops at ``--deadline-s``.

Printed per cache size: requests, errors, p50 / p95 / max latency, throughput, and the server's memory from
``/proc/<pid>/status``: RSS after the model is loaded and warmed up (one click), peak RSS (VmHWM) over the
run, and the growth, which must stay bounded by the embedding cache size (plus a constant for in-flight
requests), not grow with the number of images clicked.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EMBED_DIM = 64  # encoder width and prompt width: embeddings are 64 × 64 × 64 float32 = 1 MiB per image


def build_benchmark_sam(path: Path, seed: int = 0) -> Path:
    """A segment-anything Sam at the official 1024-px input with a small encoder (random weights), saved as
    a plain state dict."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    sam = Sam(
        image_encoder=ImageEncoderViT(img_size=1024, patch_size=16, embed_dim=EMBED_DIM, depth=2, num_heads=2,
                                      mlp_ratio=2, out_chans=EMBED_DIM, qkv_bias=True,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                                      window_size=16, global_attn_indexes=()),
        prompt_encoder=PromptEncoder(embed_dim=EMBED_DIM, image_embedding_size=(64, 64), input_image_size=(1024, 1024),
                                     mask_in_chans=16),
        mask_decoder=MaskDecoder(num_multimask_outputs=3,
                                 transformer=TwoWayTransformer(depth=2, embedding_dim=EMBED_DIM, mlp_dim=256, num_heads=8),
                                 transformer_dim=EMBED_DIM, iou_head_depth=3, iou_head_hidden_dim=64),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    with torch.no_grad():
        for name, param in sam.named_parameters():
            if "rel_pos" in name:
                param.normal_(0, 0.02)
    torch.save(sam.state_dict(), path)
    return path


def click_image(client: int, click: int, width: int = 640, height: int = 480) -> bytes:
    """A distinct, compressible PNG per (client, click)."""
    from PIL import Image

    rng = np.random.default_rng(client * 10_000 + click)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([xx / width * 255, yy / height * 255, np.full_like(xx, rng.uniform(0, 255))], axis=-1)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.25) * min(width, height)
        image[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 255, size=3)
    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Server:
    """``python -m segfill serve`` in a child process on 127.0.0.1; stopped (only this process) on exit."""

    def __init__(self, checkpoint: Path, cache_mib: int, models_env: Path) -> None:
        self.port = _free_port()
        env = dict(os.environ, SEGFILL_MODELS=str(models_env), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "segfill", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--sam-checkpoint", str(checkpoint), "--device", "cpu", "--embedding-cache-mib", str(cache_mib)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, deadline: float) -> None:
        import httpx

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited: {self.process.stderr.read()[-2000:]}")
            try:
                if httpx.get(self.base + "/segfill/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit("the server did not start in time")

    def rss_mib(self) -> float:
        return _status_kib(self.process.pid, "VmRSS") / 1024

    def peak_rss_mib(self) -> float:
        return _status_kib(self.process.pid, "VmHWM") / 1024

    def reset_peak(self) -> None:
        """Linux: writing 5 to clear_refs resets VmHWM to the current RSS (needs the process to be ours)."""
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        except OSError:
            pass

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_clients(base: str, clients: int, clicks: int, deadline: float, timeout_s: float):
    """Every client clicks ``clicks`` different images; returns (latencies in s, error strings, wall time)."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)
    images = {(c, k): base64.b64encode(click_image(c, k)).decode() for c in range(clients) for k in range(clicks)}

    def client(index: int) -> None:
        rng = np.random.default_rng(index)
        with httpx.Client(base_url=base, timeout=timeout_s) as http:
            start.wait()
            for click in range(clicks):
                if time.monotonic() > deadline:
                    with lock:
                        errors.append("deadline")
                    return
                body = {"image": images[(index, click)],
                        "points": [{"x": int(rng.integers(0, 640)), "y": int(rng.integers(0, 480)), "label": 1}]}
                began = time.perf_counter()
                try:
                    reply = http.post("/segfill/v1/mask", json=body)
                    ok = reply.status_code == 200
                    problem = None if ok else f"HTTP {reply.status_code}: {reply.text[:120]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                took = time.perf_counter() - began
                with lock:
                    if problem:
                        errors.append(problem)
                    else:
                        latencies.append(took)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(1.0, deadline - time.monotonic() + timeout_s))
    return latencies, errors, time.perf_counter() - began


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--clicks", type=int, default=20, help="clicks per client, each on a new image")
    parser.add_argument("--cache-mib", type=int, action="append", default=None,
                        help="embedding cache size(s) to run with (default: 8 and 32)")
    parser.add_argument("--deadline-s", type=float, default=600.0, help="stop everything after this long")
    parser.add_argument("--request-timeout-s", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.clicks < 1 or args.clients * args.clicks > 10_000:
        parser.error("use 1..10000 requests in all")
    caches = args.cache_mib or [8, 32]
    overall = time.monotonic() + args.deadline_s

    load = os.getloadavg()
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"# {args.clients} clients × {args.clicks} clicks, every click a new 640×480 image "
          f"(POST /segfill/v1/mask over HTTP to `segfill serve` on 127.0.0.1)")
    print(f"# SAM: 1024-px input, {EMBED_DIM}-wide 2-block encoder (random weights); 1 MiB embedding per image")
    print()
    header = ("cache MiB", "requests", "errors", "p50 ms", "p95 ms", "max ms", "req/s", "RSS MiB",
              "peak MiB", "growth MiB")
    print(" ".join(f"{h:>10}" for h in header))
    with tempfile.TemporaryDirectory(prefix="segfill-load-") as scratch:
        scratch_path = Path(scratch)
        (scratch_path / "ckpt").mkdir()
        (scratch_path / "empty").mkdir()
        checkpoint = build_benchmark_sam(scratch_path / "ckpt" / "bench_sam.pth")
        for cache_mib in caches:
            if time.monotonic() > overall:
                print("deadline reached")
                break
            with Server(checkpoint, cache_mib, scratch_path / "empty") as server:
                server.wait_ready(min(overall, time.monotonic() + 180))
                # warm-up: one click (thread pool, first encode), then measure from the warmed state
                run_clients(server.base, 1, 1, overall, args.request_timeout_s)
                baseline = server.rss_mib()
                server.reset_peak()
                latencies, errors, wall = run_clients(server.base, args.clients, args.clicks, overall,
                                                      args.request_timeout_s)
                peak = server.peak_rss_mib()
                done = len(latencies)
                row = (cache_mib, done + len(errors), len(errors), 1000 * percentile(latencies, 50),
                       1000 * percentile(latencies, 95), 1000 * max(latencies, default=float("nan")),
                       done / wall if wall else 0.0, baseline, peak, peak - baseline)
                print(f"{row[0]:>10} {row[1]:>10} {row[2]:>10} {row[3]:>10.0f} {row[4]:>10.0f} {row[5]:>10.0f} "
                      f"{row[6]:>10.2f} {row[7]:>10.0f} {row[8]:>10.0f} {row[9]:>10.0f}")
                for problem in sorted(set(errors))[:5]:
                    print(f"    error: {problem}")
    load = os.getloadavg()
    print(f"# load after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
