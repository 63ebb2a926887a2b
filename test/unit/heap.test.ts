import { applyHeapSettings } from '../../src/common/heap';
import { loadConfig } from '../../src/config/env';

describe('HEAP_GROWING_PERCENT', () => {
  it('defaults to 50 and accepts 0 (V8 default) to 400', () => {
    expect(loadConfig({}, { envFiles: [] }).heapGrowingPercent).toBe(50);
    expect(loadConfig({ HEAP_GROWING_PERCENT: '0' }, { envFiles: [] }).heapGrowingPercent).toBe(0);
    expect(() => loadConfig({ HEAP_GROWING_PERCENT: '-1' }, { envFiles: [] })).toThrow(/HEAP_GROWING_PERCENT/);
  });

  it('is applied unless it is 0 or node was given its own --heap-growing-percent', () => {
    expect(applyHeapSettings(50, [])).toBe(50);
    expect(applyHeapSettings(0, [])).toBeNull();
    expect(applyHeapSettings(50, ['--heap-growing-percent=100'])).toBeNull();
  });
});
