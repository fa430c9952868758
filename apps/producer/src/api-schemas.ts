import { z } from 'zod';

/** `POST /v1/videos` body. Unknown fields are refused, so a typo never goes unnoticed. */
export const videoSubmission = z.strictObject({
  source: z
    .string({ message: 'source is required: a file path, file:// URL or http(s) URL' })
    .trim()
    .min(1, 'source must not be empty')
    .max(4096, 'source is longer than 4096 characters'),
  title: z.string().trim().max(300, 'title is longer than 300 characters').nullish(),
});
export type VideoSubmissionBody = z.infer<typeof videoSubmission>;

export const videoIdParam = z.uuid();

/** Flattens zod issues into `{path, message}` pairs and one readable sentence. */
export function describeIssues(error: z.ZodError): { detail: string; errors: { path: string; message: string }[] } {
  const errors = error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(body)',
    message: issue.message,
  }));
  return { detail: errors.map((item) => (item.path === '(body)' ? item.message : `${item.path}: ${item.message}`)).join('; '), errors };
}
