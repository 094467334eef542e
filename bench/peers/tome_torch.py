"""PyTorch CPU peer for bench/tokens.ts: one ToMe step (bipartite soft matching, the paper's
algorithm: normalize, a @ b^T, row max, argsort, size-weighted scatter-reduce merge).
Prints one JSON line: {"torch": version, "threads": t, "ms": {N: median ms}}.
  python3 bench/peers/tome_torch.py --n 576,2304 --c 1024 --runs 7 --threads 2
"""
import argparse, json, math, time

import torch


def tome_step(x, size, r):
    with torch.no_grad():
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", default="576,2304")
    p.add_argument("--c", type=int, default=1024)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(1)
    out = {}
    for n in [int(v) for v in a.n.split(",")]:
        x = torch.randn(1, n, a.c, generator=g)
        size = torch.ones(1, n, 1)
        r = n // 4
        tome_step(x, size, r)
        ts = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            tome_step(x, size, r)
            ts.append((time.perf_counter() - t0) * 1e3)
        ts.sort()
        out[n] = ts[len(ts) // 2]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "ms": out}))


if __name__ == "__main__":
    main()
