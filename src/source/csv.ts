/**
 * A CSV reader after RFC 4180: fields separated by ',', records by line breaks (LF, CRLF or
 * CR), fields optionally in double quotes, where a quoted field may hold ',', line breaks and
 * '""' for a literal quote. Spaces and tabs around a field are dropped; inside quotes they are
 * kept. Blank lines are skipped.
 */

export interface CsvRecord {
  /** 1-based line on which the record starts (a quoted field can span lines). */
  line: number;
  fields: string[];
  /** Why the record is malformed, when it is; its fields are then not to be trusted. */
  problem?: string;
}

const isBlank = (char: string): boolean => char === ' ' || char === '\t';

/** Splits CSV text into records. Never throws: malformed records carry a `problem`. */
export function parseCsv(text: string): CsvRecord[] {
  const input = text.replace(/\r\n?/g, '\n');
  const records: CsvRecord[] = [];
  let line = 1;
  let recordLine = 1;
  let fields: string[] = [];
  let field = '';
  let inQuotes = false;
  let afterClosingQuote = false;
  let sawQuote = false;
  let problem: string | undefined;

  const endField = (): void => {
    fields.push(afterClosingQuote ? field : field.replace(/^[ \t]+|[ \t]+$/g, ''));
    field = '';
    afterClosingQuote = false;
  };
  const endRecord = (): void => {
    endField();
    const blank = !sawQuote && fields.length === 1 && fields[0] === '';
    if (!blank)
      records.push(problem === undefined ? { line: recordLine, fields } : { line: recordLine, fields, problem });
    fields = [];
    sawQuote = false;
    problem = undefined;
  };

  for (let i = 0; i < input.length; i++) {
    const char = input[i]!;
    if (inQuotes) {
      if (char === '"') {
        if (input[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          inQuotes = false;
          afterClosingQuote = true;
        }
      } else {
        if (char === '\n') line++;
        field += char;
      }
      continue;
    }
    if (char === ',') {
      endField();
    } else if (char === '\n') {
      endRecord();
      line++;
      recordLine = line;
    } else if (afterClosingQuote) {
      if (!isBlank(char)) problem ??= 'unexpected character after a closing quote';
    } else if (char === '"') {
      if (field.trim() === '') {
        field = '';
        inQuotes = true;
        sawQuote = true;
      } else {
        problem ??= 'a quote inside an unquoted field (quote the whole field and double the quote)';
        field += char;
      }
    } else {
      field += char;
    }
  }
  if (inQuotes) problem ??= 'a quoted field is not closed';
  if (inQuotes || afterClosingQuote || field !== '' || fields.length > 0) endRecord();
  return records;
}
