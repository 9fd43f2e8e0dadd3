/** The report's CSV cells: written by csv-stringify, read back by csv-parse, never a formula. */
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { neutraliseCell, toSafeCsv } from '../../src/batch/report';

describe('spreadsheet-safe CSV', () => {
  it.each(['=SUM(A1:A9)', '+1', '-2', '@cmd', '\tx', '\rx', '=HYPERLINK("http://x","y")'])(
    'a text cell starting %j is kept as text behind a quote',
    (value) => {
      expect(neutraliseCell(value)).toBe(`'${value}`);
    },
  );

  it.each(['a.png', '', "'already", '1+1', 'x=y', ' =leading space'])('%j is left as it is', (value) => {
    expect(neutraliseCell(value)).toBe(value);
  });

  it('round-trips through csv-parse: quoting, commas, quotes and line breaks intact, formulas neutralised, null empty', () => {
    const rows = [
      { name: '=1+2.png', note: 'a, "quoted"\nvalue', n: 3, missing: null },
      { name: 'plain.png', note: '-rejected', n: 0, missing: undefined },
    ];
    const text = toSafeCsv(['name', 'note', 'n', 'missing'], rows);
    expect(text.split('\n')[0]).toBe('name,note,n,missing');
    expect(parse<Record<string, string>>(text, { columns: true })).toEqual([
      { name: "'=1+2.png", note: 'a, "quoted"\nvalue', n: '3', missing: '' },
      { name: 'plain.png', note: "'-rejected", n: '0', missing: '' },
    ]);
  });
});
