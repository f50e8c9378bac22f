import { z } from 'zod';

/** `POST /dev/token`: a token as the example inbox page gets it, and the seconds it lasts. */
export const devTokenJsonSchema = z.object({ token: z.string(), expires_in: z.int().min(1) }).meta({ id: 'DevToken' });

export type DevToken = z.infer<typeof devTokenJsonSchema>;
