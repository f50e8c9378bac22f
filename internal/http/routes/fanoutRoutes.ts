import { OpenAPIHono } from '@hono/zod-openapi';
import { getFanout } from '../../service/fanoutService.ts';
import type { NotificationServiceDeps } from '../../service/notificationService.ts';
import { json } from '../openapi/answers.ts';
import { readHandler } from '../openapi/readHandler.ts';
import { producerRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { fanoutJson, fanoutJsonSchema } from '../request/fanoutJson.ts';
import { idParams, refuseId } from '../request/pathParams.ts';

const readRoute = producerRoutes('Notifications').get('/{id}', {
  summary: 'How far a fan-out got',
  request: { params: idParams },
  responses: { 200: json(fanoutJsonSchema, 'the fan-out, with its notifications counted by status') },
  errors: { 400: 'the id is not a UUID (`invalid_id`)', 404: undefined },
});

/** `GET /fanouts/:id`: how far a fan-out got and where its notifications are. */
export function fanoutRoutes(deps: Pick<NotificationServiceDeps, 'sql' | 'requestTimeoutMs'>): OpenAPIHono {
  const app = new OpenAPIHono();
  serveRoute(app, readRoute, readHandler(async ({ id }) => fanoutJson(await getFanout(deps, id))), refuseId('fan-out'));
  return app;
}
