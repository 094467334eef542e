/** A hand-written SVG scatter chart: KV-cache bytes per token vs top-1 agreement, one point per cache. */
import type { DemoReport } from './run.js';

interface Point {
  label: string;
  bytes: number;
  agreement: number;
}

const W = 640, H = 380;
const PAD = { left: 70, right: 30, top: 48, bottom: 58 };
const COLORS = ['#444444', '#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round tick step giving about `count` ticks over [lo, hi]. */
function tickStep(lo: number, hi: number, count: number): number {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
}

export function points(r: DemoReport): Point[] {
  const out: Point[] = [];
  for (const run of r.runs) {
    if (run.status !== 'ok' || run.kvBytesPerToken === undefined) continue;
    if (run.id === '1') continue; // run (2) has the same f32 cache and is the one the quantized runs extend
    out.push({ label: run.id === '2' ? 'f32 cache' : run.kv, bytes: run.kvBytesPerToken, agreement: run.agreement?.top1 ?? 1 });
  }
  return out;
}

export function kvChartSvg(r: DemoReport): string {
  const pts = points(r);
  const maxBytes = Math.max(1, ...pts.map((p) => p.bytes)) * 1.1;
  const minAgree = Math.min(0.9, ...pts.map((p) => p.agreement));
  const yLo = Math.max(0, Math.floor(minAgree * 20) / 20);
  const x = (b: number) => PAD.left + (b / maxBytes) * (W - PAD.left - PAD.right);
  const y = (a: number) => H - PAD.bottom - ((a - yLo) / (1 - yLo)) * (H - PAD.top - PAD.bottom);
  const s: string[] = [];
  s.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  s.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  s.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">KV cache: bytes per token vs top-1 agreement with BF16 (${r.tokens} tokens)</text>`);
  const xs = tickStep(0, maxBytes, 6);
  for (let t = 0; t <= maxBytes; t += xs) {
    s.push(`<line x1="${x(t)}" y1="${PAD.top}" x2="${x(t)}" y2="${H - PAD.bottom}" stroke="#e5e5e5"/>`);
    s.push(`<text x="${x(t)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${t}</text>`);
  }
  const ys = tickStep(yLo, 1, 5);
  for (let t = yLo; t <= 1 + 1e-9; t += ys) {
    s.push(`<line x1="${PAD.left}" y1="${y(t)}" x2="${W - PAD.right}" y2="${y(t)}" stroke="#e5e5e5"/>`);
    s.push(`<text x="${PAD.left - 8}" y="${y(t) + 4}" text-anchor="end">${(100 * t).toFixed(0)}%</text>`);
  }
  s.push(`<line x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}" stroke="#000"/>`);
  s.push(`<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${H - PAD.bottom}" stroke="#000"/>`);
  s.push(`<text x="${(PAD.left + W - PAD.right) / 2}" y="${H - 16}" text-anchor="middle">KV bytes per token (all ${r.model.layers} layers, K and V; smaller is better)</text>`);
  s.push(`<text transform="translate(18 ${(PAD.top + H - PAD.bottom) / 2}) rotate(-90)" text-anchor="middle">top-1 agreement with run (1)</text>`);
  // Labels: beside their point, moved up or down until they overlap no earlier label.
  const placed: { x0: number; x1: number; y: number }[] = [];
  pts.forEach((p, i) => {
    const cx = x(p.bytes), cy = y(p.agreement);
    const color = COLORS[i % COLORS.length]!;
    const text = `${p.label}: ${p.bytes.toFixed(0)} B, ${(100 * p.agreement).toFixed(1)}%`;
    const width = text.length * 6.6;
    const anchor = cx + 9 + width > W - 4 ? 'end' : 'start';
    const x0 = anchor === 'end' ? cx - 9 - width : cx + 9;
    const clear = (ty: number) => placed.every((b) => Math.abs(b.y - ty) >= 14 || b.x1 < x0 || b.x0 > x0 + width);
    const ty = [-8, 18, -22, 32, -36, 46].map((d) => cy + d).find(clear) ?? cy - 8;
    placed.push({ x0, x1: x0 + width, y: ty });
    s.push(`<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="6" fill="${color}"/>`);
    s.push(`<text x="${(anchor === 'end' ? cx - 9 : cx + 9).toFixed(1)}" y="${ty.toFixed(1)}" text-anchor="${anchor}" fill="${color}">${esc(text)}</text>`);
  });
  s.push('</svg>');
  return s.join('\n') + '\n';
}
