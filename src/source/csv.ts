/**
 * CSV records for manifests, read with csv-parse (the csv project): fields separated by ',' (or
 * ';' when the header row uses ';' and no ','), records by line breaks (LF, CRLF or CR), fields
 * optionally in double quotes, where a quoted field may hold the separator, line breaks and '""'
 * for a literal quote. Spaces and tabs around a field are dropped; inside quotes they are kept.
 * Blank lines are skipped; a byte order mark is dropped.
 *
 * A malformed record does not end the reading: it is returned with a `problem` and the line it
 * starts on, and reading resumes on the line after the one where the problem was found, so one
 * bad quote does not hide the records after it.
 */
import { parse, type CsvError, type Info } from 'csv-parse/sync';

export interface CsvRecord {
  /** 1-based line on which the record starts (a quoted field can span lines). */
  line: number;
  fields: string[];
  /** Why the record is malformed, when it is; its fields are then not to be trusted. */
  problem?: string;
}

export type CsvDelimiter = ',' | ';';

const PROBLEMS: Record<string, string> = {
  CSV_INVALID_CLOSING_QUOTE: 'unexpected character after a closing quote',
  INVALID_OPENING_QUOTE: 'a quote inside an unquoted field (quote the whole field and double the quote)',
  CSV_QUOTE_NOT_CLOSED: 'a quoted field is not closed',
};

/** The separator of a CSV text: ';' when its first non-blank line has a ';' and no ','. */
export function detectDelimiter(text: string): CsvDelimiter {
  const header = text.split(/\r\n|\r|\n/).find((l) => l.trim() !== '') ?? '';
  return header.includes(';') && !header.includes(',') ? ';' : ',';
}

const BLANK_LINES = /^([ \t]*\n)+/;

/** Lines (LF) inside a record's raw text, leaving out blank lines before it and its own line break. */
function innerLineBreaks(raw: string): number {
  const body = raw.replace(BLANK_LINES, '').replace(/\n$/, '');
  let n = 0;
  for (const c of body) if (c === '\n') n++;
  return n;
}

/** Splits CSV text into records. Never throws: malformed records carry a `problem`. */
export function parseCsv(text: string, opts: { delimiter?: CsvDelimiter } = {}): CsvRecord[] {
  const input = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).replace(/\r\n?/g, '\n');
  const delimiter = opts.delimiter ?? detectDelimiter(input);
  const lines = input.split('\n');
  const records: CsvRecord[] = [];
  // Reads from line `from` (1-based) to the end; after a malformed record, again from the line
  // after the problem.
  let from = 1;
  while (from <= lines.length) {
    const offset = from - 1;
    let lastEnd = offset;
    try {
      parse(lines.slice(offset).join('\n'), {
        delimiter,
        quote: '"',
        escape: '"',
        bom: true,
        trim: true,
        relax_column_count: true,
        skip_empty_lines: true,
        info: true,
        raw: true,
        // With `info` and `raw`, each record arrives as { record, info, raw }.
        on_record: (value: unknown) => {
          const { record, info, raw } = value as { record: string[]; info: Info; raw: string };
          const end = offset + info.lines;
          records.push({ line: end - innerLineBreaks(raw), fields: record });
          lastEnd = end;
          return null;
        },
      });
      return records;
    } catch (err) {
      const error = err as CsvError & { lines?: number };
      // The malformed record starts on the first non-blank line after the last good one.
      let start = lastEnd + 1;
      while (start <= lines.length && lines[start - 1]!.trim() === '') start++;
      const at = offset + (error.lines ?? 1);
      records.push({ line: start, fields: [], problem: PROBLEMS[error.code] ?? error.message });
      from = Math.max(at, start) + 1;
    }
  }
  return records;
}
