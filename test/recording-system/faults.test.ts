/**
 * Injected faults: each kind at about its configured rate, repeatable with a seed, and with the
 * effect it promises (silent loss, altered bytes, nothing kept on failure).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RecordingSystemError } from '../../src/recording-system/port';
import { mulberry32, pickFault } from '../../src/devtools/simulator/faults';
import { putRequest, startRig, writeSource, type Rig } from './helpers';

const PUTS = 400;
const RATE = 0.25;
/** 400 draws at 0.25: mean 100, standard deviation about 8.7; the band is about 3.5 deviations wide each way. */
const BAND = { min: 70, max: 130 };

/** What a PUT turned into, as seen through the adapter. */
async function outcomeOf(rig: Rig, index: number, source: Awaited<ReturnType<typeof writeSource>>): Promise<string> {
  try {
    const result = await rig.client.put(putRequest(`order-${index % 7}`, `file-${index}.png`, source));
    return result.outcome;
  } catch (err) {
    if (err instanceof RecordingSystemError) return `${err.kind}:${err.httpStatus ?? '-'}`;
    throw err;
  }
}

/** Sends `count` PUTs of distinct files one after the other, so the draw order is fixed, and returns their outcomes. */
async function sendPuts(rig: Rig, count: number): Promise<string[]> {
  const source = await writeSource(rig.sourceDir, 'image.png', 'image bytes for the fault tests');
  const outcomes: string[] = [];
  for (let index = 0; index < count; index++) outcomes.push(await outcomeOf(rig, index, source));
  return outcomes;
}

/** Waits until the simulator holds `count` requests open (at most five seconds). */
async function untilHeld(rig: Rig, count: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (rig.sim.stats().held < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function countOf(values: string[], value: string): number {
  return values.filter((v) => v === value).length;
}

describe('simulator faults', () => {
  let rig: Rig | undefined;

  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it.each([
    ['fail', { failRate: RATE }, 'unavailable:503'],
    ['reject', { rejectRate: RATE }, 'rejected:422'],
    ['timeout', { timeoutRate: RATE, timeoutHoldMs: 5 }, 'unavailable:504'],
    ['drop', { dropRate: RATE }, 'stored'],
    ['corrupt', { corruptRate: RATE }, 'stored'],
  ] as const)('%s happens at about its rate (400 PUTs at 0.25, seeded)', async (kind, faults, visible) => {
    rig = await startRig({ seed: 20240611, ...faults });
    const outcomes = await sendPuts(rig, PUTS);
    const injected = rig.sim.stats().faults[kind];
    expect(injected).toBeGreaterThanOrEqual(BAND.min);
    expect(injected).toBeLessThanOrEqual(BAND.max);
    if (visible === 'stored') {
      // drop and corrupt are silent: every PUT looks stored.
      expect(countOf(outcomes, 'stored')).toBe(PUTS);
    } else {
      expect(countOf(outcomes, visible)).toBe(injected);
      expect(countOf(outcomes, 'stored')).toBe(PUTS - injected);
    }
    const otherKinds = Object.entries(rig.sim.stats().faults).filter(([k]) => k !== kind);
    expect(otherKinds.every(([, n]) => n === 0)).toBe(true);
  });

  it('all kinds at once: each near its own rate, and the files held are exactly the ones not failed or dropped', async () => {
    rig = await startRig({
      seed: 7,
      failRate: 0.1,
      timeoutRate: 0.1,
      rejectRate: 0.1,
      dropRate: 0.1,
      corruptRate: 0.1,
      timeoutHoldMs: 5,
    });
    const outcomes = await sendPuts(rig, PUTS);
    const { faults, files } = rig.sim.stats();
    for (const n of Object.values(faults)) {
      expect(n).toBeGreaterThanOrEqual(20);
      expect(n).toBeLessThanOrEqual(60);
    }
    expect(countOf(outcomes, 'stored')).toBe(PUTS - faults.fail - faults.timeout - faults.reject);
    expect(files).toBe(PUTS - faults.fail - faults.timeout - faults.reject - faults.drop);
  });

  it('the same seed gives the same fault sequence; another seed another one', async () => {
    const mixed = {
      failRate: 0.15,
      rejectRate: 0.15,
      timeoutRate: 0.1,
      dropRate: 0.1,
      corruptRate: 0.1,
      timeoutHoldMs: 5,
    };
    const run = async (seed: number): Promise<string[]> => {
      const own = await startRig({ seed, ...mixed });
      try {
        const outcomes = await sendPuts(own, 60);
        own.sim.setFaults({ failRate: 0, timeoutRate: 0 });
        // Show silent faults too: what each file's receipt says after the PUT.
        const held = await Promise.all(outcomes.map((_, i) => own.client.stat(`order-${i % 7}`, `file-${i}.png`)));
        return outcomes.map((outcome, i) => `${outcome}/${held[i]?.sha256.slice(0, 8) ?? 'absent'}`);
      } finally {
        await own.close();
      }
    };
    const first = await run(42);
    const second = await run(42);
    const other = await run(43);
    expect(second).toEqual(first);
    expect(other).not.toEqual(first);
    expect(new Set(first.map((o) => o.split('/')[0])).size).toBeGreaterThan(2);
  });

  it('drop answers 201 but keeps nothing: only a check afterwards notices', async () => {
    rig = await startRig({ dropRate: 1 });
    const source = await writeSource(rig.sourceDir, 'lost.png', 'lost after a 2xx');
    expect(await rig.client.put(putRequest('order-1', 'lost.png', source))).toEqual({
      outcome: 'stored',
      httpStatus: 201,
    });
    expect(await rig.client.stat('order-1', 'lost.png')).toBeNull();
    expect(rig.sim.stats()).toMatchObject({ files: 0, faults: { drop: 1 } });
  });

  it('corrupt keeps altered bytes: the receipt sha256 differs from the source, and a resend conflicts', async () => {
    rig = await startRig({ corruptRate: 1 });
    const source = await writeSource(rig.sourceDir, 'bent.png', 4096);
    expect((await rig.client.put(putRequest('order-1', 'bent.png', source))).outcome).toBe('stored');
    const receipt = await rig.client.stat('order-1', 'bent.png');
    expect(receipt).not.toBeNull();
    expect(receipt!.sha256).not.toBe(source.sha256);
    expect(receipt!.size).toBe(source.size);

    rig.sim.setFaults({ corruptRate: 0 });
    expect(await rig.client.put(putRequest('order-1', 'bent.png', source)).catch((e: unknown) => e)).toMatchObject({
      kind: 'conflict',
    });
    // A rollback then a resend repairs it.
    await rig.client.remove('order-1', 'bent.png');
    await rig.client.put(putRequest('order-1', 'bent.png', source));
    expect((await rig.client.stat('order-1', 'bent.png'))?.sha256).toBe(source.sha256);
  });

  it('corrupt of an empty file keeps one byte, so the size differs too', async () => {
    rig = await startRig({ corruptRate: 1 });
    const source = await writeSource(rig.sourceDir, 'empty.png', '');
    await rig.client.put(putRequest('order-1', 'empty.png', source));
    const receipt = await rig.client.stat('order-1', 'empty.png');
    expect(receipt).toMatchObject({ size: 1 });
    expect(receipt!.sha256).not.toBe(source.sha256);
  });

  it('setFaults switches faults off and on while running, and refuses invalid values', async () => {
    rig = await startRig({ failRate: 1 });
    const source = await writeSource(rig.sourceDir, 'flaky.png', 'flaky');
    await expect(rig.client.put(putRequest('order-1', 'flaky.png', source))).rejects.toMatchObject({
      kind: 'unavailable',
    });
    rig.sim.setFaults({ failRate: 0 });
    await expect(rig.client.put(putRequest('order-1', 'flaky.png', source))).resolves.toMatchObject({
      outcome: 'stored',
    });
    expect(() => rig!.sim.setFaults({ failRate: 1.5 })).toThrow(/failRate/);
    expect(() => rig!.sim.setFaults({ latencyMs: -1 })).toThrow(/latencyMs/);
    // A refused change leaves the settings as they were.
    await expect(rig.client.stat('order-1', 'flaky.png')).resolves.not.toBeNull();
  });

  it('faultMethods limits faults to the methods listed', async () => {
    rig = await startRig({ failRate: 1, faultMethods: ['PUT'] });
    const source = await writeSource(rig.sourceDir, 'scoped.png', 'scoped');
    await expect(rig.client.put(putRequest('order-1', 'scoped.png', source))).rejects.toMatchObject({
      kind: 'unavailable',
    });
    expect(await rig.client.stat('order-1', 'scoped.png')).toBeNull();
    expect(await rig.client.remove('order-1', 'scoped.png')).toBe('absent');
    expect((await rig.client.list()).files).toEqual([]);
    expect(rig.sim.stats().faults.fail).toBe(1);

    rig.sim.setFaults({ faultMethods: ['DELETE'] });
    await expect(rig.client.put(putRequest('order-1', 'scoped.png', source))).resolves.toMatchObject({
      outcome: 'stored',
    });
    await expect(rig.client.remove('order-1', 'scoped.png')).rejects.toMatchObject({ kind: 'unavailable' });
    expect(await rig.client.stat('order-1', 'scoped.png')).not.toBeNull();
  });

  it('latency delays every request but /health', async () => {
    rig = await startRig({ latencyMs: 400 });
    const started = Date.now();
    expect(await rig.client.stat('order-1', 'nothing.png')).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    const healthStarted = Date.now();
    const health = await fetch(`${rig.sim.url}/health`);
    expect(await health.json()).toEqual({ ok: true });
    expect(Date.now() - healthStarted).toBeLessThan(300);
  });

  it('a held request is answered 504 after timeoutHoldMs, and stats show it held meanwhile', async () => {
    rig = await startRig({ timeoutRate: 1, timeoutHoldMs: 1_500 });
    const pending = rig.client.stat('order-1', 'held.png').catch((e: unknown) => e);
    await untilHeld(rig, 1);
    expect(rig.sim.stats().held).toBe(1);
    expect(await pending).toMatchObject({ kind: 'unavailable', httpStatus: 504 });
    expect(rig.sim.stats().held).toBe(0);
  });

  it('closing the simulator releases requests it holds open', async () => {
    rig = await startRig({ timeoutRate: 1 });
    const source = await writeSource(rig.sourceDir, 'held.png', 'held');
    const pending = rig.client.put(putRequest('order-1', 'held.png', source)).catch((e: unknown) => e);
    await untilHeld(rig, 1);
    const started = Date.now();
    await rig.sim.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await pending).toMatchObject({ kind: 'network', retryable: true });
  });
});

describe('fault drawing', () => {
  it('mulberry32 is repeatable and spreads over [0, 1)', () => {
    const a = mulberry32(1);
    const b = mulberry32(1);
    const draws = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(draws);
    expect(draws.every((d) => d >= 0 && d < 1)).toBe(true);
    const mean = draws.reduce((sum, d) => sum + d, 0) / draws.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
  });

  it('pickFault lays the rates end to end in order; rates beyond 1 are cut from the last kinds', () => {
    const rates = { failRate: 0.1, timeoutRate: 0.2, rejectRate: 0, dropRate: 0.3, corruptRate: 0 };
    const kinds = ['fail', 'timeout', 'reject', 'drop', 'corrupt'] as const;
    expect(pickFault(0.05, kinds, rates)).toBe('fail');
    expect(pickFault(0.1, kinds, rates)).toBe('timeout');
    expect(pickFault(0.29, kinds, rates)).toBe('timeout');
    expect(pickFault(0.31, kinds, rates)).toBe('drop');
    expect(pickFault(0.65, kinds, rates)).toBeNull();
    const saturated = { failRate: 1, timeoutRate: 1, rejectRate: 1, dropRate: 1, corruptRate: 1 };
    expect(pickFault(0.999, kinds, saturated)).toBe('fail');
  });
});
