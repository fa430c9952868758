/** One field of a multipart/form-data body. */
export interface FormPart {
  name: string;
  filename: string | undefined;
  contentType: string | undefined;
  data: Buffer;
}

export class MultipartError extends Error {
  override name = 'MultipartError';
}

function boundaryOf(contentType: string | undefined): string {
  const match = /^multipart\/form-data\s*;.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '');
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) throw new MultipartError('expected a multipart/form-data body with a boundary');
  return boundary;
}

function headerParam(header: string, name: string): string | undefined {
  const match = new RegExp(`;\\s*${name}="([^"]*)"`, 'i').exec(header);
  return match?.[1];
}

/** Splits a buffered multipart/form-data body into its parts (enough for the uploads the providers take). */
export function parseMultipart(body: Buffer, contentType: string | undefined): FormPart[] {
  const delimiter = Buffer.from(`--${boundaryOf(contentType)}`);
  const parts: FormPart[] = [];
  let cursor = body.indexOf(delimiter);
  if (cursor < 0) throw new MultipartError('multipart body does not contain its boundary');
  while (cursor >= 0) {
    const afterDelimiter = cursor + delimiter.length;
    if (body.subarray(afterDelimiter, afterDelimiter + 2).toString() === '--') break;
    const headerStart = afterDelimiter + 2;
    const headerEnd = body.indexOf('\r\n\r\n', headerStart);
    if (headerEnd < 0) throw new MultipartError('multipart part without a header terminator');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd);
    if (next < 0) throw new MultipartError('multipart body ends without its closing boundary');
    const headers = body.subarray(headerStart, headerEnd).toString('utf8').split('\r\n');
    const disposition = headers.find((line) => /^content-disposition:/i.test(line)) ?? '';
    const type = headers.find((line) => /^content-type:/i.test(line));
    const name = headerParam(disposition, 'name');
    if (name === undefined) throw new MultipartError('multipart part without a name');
    parts.push({
      name,
      filename: headerParam(disposition, 'filename'),
      contentType: type?.slice(type.indexOf(':') + 1).trim(),
      data: body.subarray(headerEnd + 4, next),
    });
    cursor = next + 2;
  }
  return parts;
}
