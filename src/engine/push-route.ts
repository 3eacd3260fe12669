/**
 * `POST /images/{name}/push`: a JSON progress stream like pull's, with the credentials of the
 * X-Registry-Auth header, and Docker's aux message (Tag, Digest, Size) for each pushed tag.
 */
import type { Router } from '../api/router.js';
import { JsonMessageWriter } from '../api/streams.js';
import { describeError } from '../common/errors.js';
import type { ImageService } from '../image/image-service.js';
import { parseReference } from '../image/reference.js';
import { parseName } from '../image/store/names.js';
import { registryClientFor } from './auth-route.js';

export function registerPushRoute(router: Router, images: ImageService): void {
  router.post('/images/{name:.*}/push', async (ctx) => {
    const tag = ctx.query.string('tag');
    const reference = tag ? `${ctx.params.name}:${tag}` : ctx.params.name;
    // Checked before the stream starts, so a bad name or header is an HTTP error like Docker's.
    const domain = parseReference(reference, { defaultTag: false }).domain;
    const registry = registryClientFor(images.registry, domain, ctx.header('x-registry-auth'));
    const stream = ctx.stream('application/json');
    const writer = new JsonMessageWriter(stream);
    try {
      const pushed = await images.push(reference, {
        registry,
        onProgress: (event) => {
          if (event.id && event.progressDetail)
            void writer.progress(event.id, event.status, event.progressDetail);
          else void writer.status(event.status, event.id);
        },
      });
      for (const item of pushed)
        await writer.aux({
          Tag: parseName(item.name).tag ?? item.digest,
          Digest: item.digest,
          Size: item.size,
        });
    } catch (err) {
      await writer.error(describeError(err));
    }
    stream.end();
  });
}
