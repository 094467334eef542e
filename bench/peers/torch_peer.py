"""PyTorch CPU peer for the benches: what a user would run instead, timed in the bench's own run.

Reads one JSON request per line on stdin, answers one JSON line on stdout:
  {"op": "tome", "n": 576, "c": 1024, "r": 144, "threads": 2, "reps": 1}
      one ToMe step, the paper's algorithm (normalize, a @ b^T, row max, argsort,
      size-weighted scatter-reduce merge), f32
  {"op": "attn", "tokens": 16384, "heads": 8, "dim": 128, "dtype": "bf16", "threads": 2, "reps": 1}
      one decode step of dense attention: softmax(q K^T / sqrt(d)) V for one query per head
-> {"ms": [..per rep..], "torch": version, "threads": n}
The bench starts it with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed, so OpenBLAS picks its
own kernels for this CPU (the peer at its best).
"""
import json
import math
import sys
import time

import torch

_cache = {}


def tome_step(x, size, r):
    metric = x / x.norm(dim=-1, keepdim=True)
    a, b = metric[..., ::2, :], metric[..., 1::2, :]
    scores = a @ b.transpose(-1, -2)
    node_max, node_idx = scores.max(dim=-1)
    edge_idx = node_max.argsort(dim=-1, descending=True)[..., None]
    unm_idx = edge_idx[..., r:, :]
    src_idx = edge_idx[..., :r, :]
    dst_idx = node_idx[..., None].gather(dim=-2, index=src_idx)
    xs = x * size
    src, dst = xs[..., ::2, :], xs[..., 1::2, :]
    n, t1, c = src.shape
    unm = src.gather(dim=-2, index=unm_idx.expand(n, t1 - r, c))
    srcm = src.gather(dim=-2, index=src_idx.expand(n, r, c))
    dst = dst.scatter_reduce(-2, dst_idx.expand(n, r, c), srcm, reduce="sum")
    merged = torch.cat([unm, dst], dim=1)
    s_src, s_dst = size[..., ::2, :], size[..., 1::2, :]
    s_unm = s_src.gather(dim=-2, index=unm_idx)
    s_m = s_src.gather(dim=-2, index=src_idx)
    s_dst = s_dst.scatter_reduce(-2, dst_idx, s_m, reduce="sum")
    sizes = torch.cat([s_unm, s_dst], dim=1)
    return merged / sizes, sizes


def attn_step(q, k, v, scale):
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    p = torch.softmax(s.float(), dim=-1).to(v.dtype)
    return torch.matmul(p, v)


def run(req):
    if req["op"] == "version":
        return {"ms": [], "torch": torch.__version__, "threads": torch.get_num_threads()}
    torch.set_num_threads(int(req.get("threads", 1)))
    reps = int(req.get("reps", 1))
    if req["op"] == "tome":
        key = ("tome", req["n"], req["c"])
        if key not in _cache:
            g = torch.Generator().manual_seed(1)
            _cache[key] = (torch.randn(1, req["n"], req["c"], generator=g), torch.ones(1, req["n"], 1))
            tome_step(*_cache[key], req["r"])  # warm-up
        x, size = _cache[key]
        fn = lambda: tome_step(x, size, int(req["r"]))
    elif req["op"] == "attn":
        dt = {"bf16": torch.bfloat16, "f32": torch.float32}[req.get("dtype", "bf16")]
        key = ("attn", req["tokens"], req["heads"], req["dim"], dt)
        if key not in _cache:
            _cache.clear()
            g = torch.Generator().manual_seed(1)
            h, t, d = req["heads"], req["tokens"], req["dim"]
            q = torch.randn(h, 1, d, generator=g).to(dt)
            k = torch.randn(h, t, d, generator=g).to(dt)
            v = torch.randn(h, t, d, generator=g).to(dt)
            _cache[key] = (q, k, v, 1.0 / math.sqrt(d))
            attn_step(*_cache[key])
        fn = lambda: attn_step(*_cache[key])
    elif req["op"] == "bw":
        # read bandwidth: sum of a large f32 tensor (MiB from the request), all threads given
        key = ("bw", req.get("mib", 256))
        if key not in _cache:
            _cache.clear()
            _cache[key] = torch.ones(int(req.get("mib", 256)) * (1 << 18))
            _cache[key].sum()
        fn = lambda: _cache[key].sum()
    else:
        raise ValueError("unknown op " + str(req["op"]))
    ms = []
    with torch.no_grad():
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t0) * 1e3)
    return {"ms": ms, "torch": torch.__version__, "threads": torch.get_num_threads()}


def main():
    import warnings

    warnings.filterwarnings("ignore")
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            out = run(json.loads(line))
        except Exception as e:  # report, keep serving
            out = {"error": repr(e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
