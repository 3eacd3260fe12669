import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router, type PathParams } from '../../../src/api/router.js';

const noop = (): undefined => undefined;

test('parameters match one segment and are percent-decoded', () => {
  const router = new Router().get('/containers/{id}/json', noop);
  assert.deepEqual(router.match('GET', '/containers/abc/json')?.params, { id: 'abc' });
  assert.deepEqual(router.match('GET', '/containers/my%20app/json')?.params, { id: 'my app' });
  assert.equal(router.match('GET', '/containers/a/b/json'), undefined);
  assert.equal(router.match('GET', '/containers//json'), undefined);
  assert.equal(
    router.match('GET', '/containers/%zz/json'),
    undefined,
    'bad percent-encoding matches nothing',
  );
});

test('{name:.*} spans segments, for image names with slashes', () => {
  const router = new Router()
    .get('/images/json', noop)
    .get('/images/{name:.*}/json', noop)
    .delete('/images/{name:.*}', noop);
  assert.deepEqual(router.match('GET', '/images/localhost:5000/team/app:1.0/json')?.params, {
    name: 'localhost:5000/team/app:1.0',
  });
  assert.equal(router.match('GET', '/images/json')?.route.pattern, '/images/json');
  assert.deepEqual(router.match('DELETE', '/images/a/b')?.params, { name: 'a/b' });
  assert.deepEqual(router.match('GET', '/images/a%2Fb/json')?.params, { name: 'a/b' });
});

test('methods are matched; HEAD falls back to GET; first registration wins', () => {
  const first = (): string => 'first';
  const second = (): string => 'second';
  const router = new Router().get('/x/{id}', first).get('/x/{id}', second).post('/x/{id}/start', noop);
  assert.equal(router.match('GET', '/x/1')?.route.handler, first);
  assert.equal(router.match('HEAD', '/x/1')?.route.handler, first);
  assert.equal(router.match('POST', '/x/1'), undefined);
  assert.equal(router.match('GET', '/x/1/start'), undefined);
  const head = (): undefined => undefined;
  router.head('/x/{id}', head);
  assert.equal(router.match('HEAD', '/x/1')?.route.handler, head, 'an explicit HEAD route is preferred');
});

test('literal characters are not regular expressions', () => {
  const router = new Router().get('/a.b/{id}', noop);
  assert.ok(router.match('GET', '/a.b/1'));
  assert.equal(router.match('GET', '/axb/1'), undefined);
});

test('bad patterns are refused at registration', () => {
  assert.throws(() => new Router().get('x', noop), /must start with/);
  assert.throws(() => new Router().get('/a/{id', noop), /unclosed/);
  assert.throws(() => new Router().get('/a/{id}/{id}', noop), /repeats/);
  assert.throws(() => new Router().get('/a/{id:[0-9]+}', noop), /only \{name\}/);
  assert.throws(() => new Router().get('/a/{1x}', noop), /bad parameter name/);
});

test('parameters are typed from the pattern', () => {
  const params: PathParams<'/containers/{id}/exec/{name:.*}'> = { id: 'a', name: 'b' };
  assert.deepEqual(params, { id: 'a', name: 'b' });
  // The compiler rejects a parameter the pattern does not have (tsc fails if this is not an error).
  const router = new Router().get('/containers/{id}/json', (ctx) => {
    // @ts-expect-error only `id` is a parameter of this route
    void ctx.params.name;
    return ctx.params.id;
  });
  assert.deepEqual(
    router.routes().map((r) => `${r.method} ${r.pattern}`),
    ['GET /containers/{id}/json'],
  );
});
