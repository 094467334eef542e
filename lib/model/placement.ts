/**
 * Where each unit of a CompressedModel lives: one device for all, blocks spread over several
 * devices in contiguous ranges balanced by bytes, or an explicit prefix -> device map (longest
 * prefix wins, as accelerate's device_map). Decode buffers follow: each device holds the
 * buffers of the units placed on it.
 */
import { parseDevice, deviceId, resolveDevice, type DeviceId, type DeviceString } from '../backend.js';
import { InferzipError } from '../errors.js';
import type { UnitInfo } from './catalog.js';

/**
 * - a device string ('cpu', 'cuda', 'cuda:N', 'auto'): every unit there;
 * - `{ devices: ['cuda:0', 'cuda:1', ...] }`: the units in order (embedding-like standalone units
 *   first, then the blocks, then the other standalone units such as lm_head) cut into contiguous
 *   ranges, one per listed device in that order, balanced by compressed + decoded bytes;
 * - `{ map: { 'model.layers.0': 'cuda:0', 'model.layers.1': 'cuda:1', ... }, default? }`: each
 *   unit goes where the longest key that is its prefix (whole dotted components; a trailing '.'
 *   is allowed; '' matches everything) says. A unit no key covers goes to `default`; without a
 *   default it is an INVALID_ARGUMENT error naming the unmapped units.
 */
export type PlacementOption =
  | DeviceString
  | 'auto'
  | { readonly devices: readonly DeviceString[] }
  | { readonly map: Readonly<Record<string, DeviceString>>; readonly default?: DeviceString };

function bad(message: string): InferzipError {
  return new InferzipError('INVALID_ARGUMENT', `CompressedModel placement: ${message}`);
}

function resolve(device: unknown, where: string): DeviceId {
  const { kind, index } = parseDevice(device, where);
  return deviceId(kind, index);
}

/** Spreading order: embedding-like standalone units, the blocks, then the other standalone units. */
function spreadOrder(units: readonly UnitInfo[]): UnitInfo[] {
  const first = units.filter((u) => u.kind !== 'block' && /embed/i.test(u.prefix));
  const last = units.filter((u) => u.kind !== 'block' && !/embed/i.test(u.prefix));
  return [...first, ...units.filter((u) => u.kind === 'block'), ...last];
}

/** Bytes a unit costs its device: its stored buffers plus what it decodes to (BF16). */
export function unitCost(u: UnitInfo): number {
  return u.bytes + u.elements * 2;
}

/**
 * Cuts `units` (in spreading order) into contiguous ranges over `devices`: a unit goes to the
 * device whose share of the total its byte midpoint falls in, so ranges are contiguous and each
 * device's bytes are within one unit of an even split.
 */
function spread(units: readonly UnitInfo[], devices: readonly DeviceId[]): Map<string, DeviceId> {
  const order = spreadOrder(units);
  const total = order.reduce((s, u) => s + unitCost(u), 0);
  const out = new Map<string, DeviceId>();
  let before = 0;
  for (const u of order) {
    const mid = before + unitCost(u) / 2;
    const slot = total > 0 ? Math.min(devices.length - 1, Math.floor((mid / total) * devices.length)) : 0;
    out.set(u.prefix, devices[slot]!);
    before += unitCost(u);
  }
  return out;
}

/** True when `key` covers `prefix` on dotted-component boundaries. */
function covers(key: string, prefix: string): boolean {
  const k = key.endsWith('.') ? key.slice(0, -1) : key;
  return k === '' || prefix === k || prefix.startsWith(`${k}.`);
}

function mapped(units: readonly UnitInfo[], map: Readonly<Record<string, unknown>>, fallback: unknown): Map<string, DeviceId> {
  const entries = Object.entries(map).map(([key, device]) => ({ key, id: resolve(device, `placement.map['${key}']`) }));
  const def = fallback === undefined ? undefined : resolve(fallback, 'placement.default');
  const out = new Map<string, DeviceId>();
  const unmapped: string[] = [];
  for (const u of units) {
    let best: { key: string; id: DeviceId } | undefined;
    for (const e of entries) if (covers(e.key, u.prefix) && (!best || e.key.length > best.key.length)) best = e;
    const id = best?.id ?? def;
    if (id) out.set(u.prefix, id);
    else unmapped.push(u.prefix);
  }
  if (unmapped.length > 0) {
    const shown = unmapped.slice(0, 8).join(', ') + (unmapped.length > 8 ? `, ... (${unmapped.length} in all)` : '');
    throw bad(`no map key covers unit${unmapped.length === 1 ? '' : 's'} ${shown}; add keys for them or a default device`);
  }
  return out;
}

/** The device of every unit, by prefix. Throws INVALID_ARGUMENT (bad strings, shapes, unmapped units). */
export function planPlacement(units: readonly UnitInfo[], option: unknown): Map<string, DeviceId> {
  if (option === undefined || typeof option === 'string') {
    const id = resolveDevice(option as DeviceString | 'auto' | undefined, 'CompressedModel device');
    return new Map(units.map((u) => [u.prefix, id]));
  }
  if (option === null || typeof option !== 'object' || Array.isArray(option)) {
    throw bad(`expected a device string, { devices: [...] } or { map: {...} }, got ${Array.isArray(option) ? 'an array' : String(option)}`);
  }
  const o = option as Record<string, unknown>;
  const keys = Object.keys(o);
  if ('devices' in o) {
    if (keys.length !== 1) throw bad(`{ devices } takes no other field (got ${keys.join(', ')})`);
    const list = o.devices;
    if (!Array.isArray(list) || list.length === 0) throw bad(`devices must be a non-empty array of device strings, got ${String(list)}`);
    const ids = list.map((d, i) => resolve(d, `placement.devices[${i}]`));
    const labels = ids.map((d) => d.label);
    const dup = labels.find((l, i) => labels.indexOf(l) !== i);
    if (dup) throw bad(`devices lists ${dup} twice (${labels.join(', ')})`);
    return spread(units, ids);
  }
  if ('map' in o) {
    const extra = keys.filter((k) => k !== 'map' && k !== 'default');
    if (extra.length > 0) throw bad(`{ map } takes only map and default (got ${extra.join(', ')})`);
    if (o.map === null || typeof o.map !== 'object' || Array.isArray(o.map)) throw bad(`map must be an object of prefix -> device`);
    return mapped(units, o.map as Record<string, unknown>, o.default);
  }
  throw bad(`an object placement needs 'devices' or 'map' (got ${keys.length ? keys.join(', ') : 'an empty object'})`);
}

/** The first device a placement names (what a model without blocks reports as its device). */
export function placementFallback(option: unknown): DeviceId {
  if (option !== null && typeof option === 'object' && !Array.isArray(option)) {
    const o = option as { devices?: unknown; map?: unknown; default?: unknown };
    const first = Array.isArray(o.devices)
      ? o.devices[0]
      : (o.default ?? (o.map && typeof o.map === 'object' ? Object.values(o.map)[0] : undefined));
    if (typeof first === 'string') return resolve(first, 'placement');
  }
  return resolveDevice(typeof option === 'string' ? (option as DeviceString | 'auto') : undefined, 'placement');
}
