/**
 * The few WebDAV bodies the WebDAV adapter sends and reads: PROPFIND and PROPPATCH requests,
 * and the multistatus answer, read by element local names (servers choose their own prefixes).
 */

/** The namespace of image-sync's own properties. */
export const DAV_NS = 'urn:image-sync:';

export const PROPFIND_BODY =
  '<?xml version="1.0" encoding="utf-8"?>' +
  `<D:propfind xmlns:D="DAV:" xmlns:I="${DAV_NS}"><D:prop>` +
  '<D:getcontentlength/><D:getetag/><D:getlastmodified/><D:resourcetype/><I:idempotency-key/><I:sha256/>' +
  '</D:prop></D:propfind>';

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One `<D:set>` per property: some servers keep only the first property of a shared one. */
export function proppatchBody(props: Record<string, string>): string {
  const sets = Object.entries(props)
    .map(([name, value]) => `<D:set><D:prop><I:${name}>${escapeXml(value)}</I:${name}></D:prop></D:set>`)
    .join('');
  return `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:I="${DAV_NS}">${sets}</D:propertyupdate>`;
}

export interface DavEntry {
  href: string;
  collection: boolean;
  size: number;
  etag?: string;
  lastModified?: string;
  idempotencyKey?: string;
  sha256?: string;
}

function unescapeXml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** The text of the first element with this local name that has content, in `xml`. */
function valueOf(xml: string, localName: string): string | undefined {
  const re = new RegExp(`<(?:[\\w.-]+:)?${localName}(?:\\s[^>]*)?>([^<]*)</(?:[\\w.-]+:)?${localName}>`);
  const m = re.exec(xml);
  return m ? unescapeXml(m[1]!.trim()) : undefined;
}

/** The responses of a multistatus body; only properties under a 200 propstat count. */
export function parseMultistatus(xml: string): DavEntry[] {
  const out: DavEntry[] = [];
  const responses = xml.split(/<(?:[\w.-]+:)?response[\s>]/).slice(1);
  for (const response of responses) {
    const href = valueOf(response, 'href');
    if (!href) continue;
    const found = response
      .split(/<(?:[\w.-]+:)?propstat[\s>]/)
      .slice(1)
      .filter((p) => /<(?:[\w.-]+:)?status>[^<]*\s200\s/.test(p))
      .join('');
    out.push({
      href,
      collection: /<(?:[\w.-]+:)?collection\s*\/>/.test(found),
      size: Number(valueOf(found, 'getcontentlength') ?? 0),
      etag: valueOf(found, 'getetag'),
      lastModified: valueOf(found, 'getlastmodified'),
      idempotencyKey: valueOf(found, 'idempotency-key'),
      sha256: valueOf(found, 'sha256'),
    });
  }
  return out;
}
