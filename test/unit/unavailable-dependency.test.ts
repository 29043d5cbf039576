/**
 * Which failures the API reports as 503 (a dependency out of reach for a moment, retry) rather
 * than 500 (a bug): api/errors.ts unavailableDependency.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MongoBulkWriteError, MongoNetworkError, MongoServerError, MongoServerSelectionError } from 'mongodb';
import { unavailableDependency } from '../../api/errors';

test('database out of reach: network errors, server selection, and a bulk write cut by either', () => {
  const net = new MongoNetworkError('connection 2 to 127.0.0.1:27017 closed');
  assert.equal(unavailableDependency(net), 'the database');
  assert.equal(
    unavailableDependency(new MongoServerSelectionError('Server selection timed out after 10000 ms', {} as never)),
    'the database',
  );
  assert.equal(unavailableDependency(new MongoBulkWriteError(net as never, {} as never)), 'the database');
});

test('Temporal out of reach: a ServiceError over gRPC UNAVAILABLE', () => {
  const err = Object.assign(new Error('14 UNAVAILABLE: connection refused'), {
    name: 'ServiceError',
    cause: { code: 14 },
  });
  assert.equal(unavailableDependency(err), 'Temporal');
  assert.equal(
    unavailableDependency(Object.assign(new Error('5 NOT_FOUND'), { name: 'ServiceError', cause: { code: 5 } })),
    undefined,
  );
});

test('everything else is not a dependency being down: a duplicate key, a plain bug', () => {
  assert.equal(
    unavailableDependency(new MongoServerError({ message: 'E11000 duplicate key', code: 11000 } as never)),
    undefined,
  );
  assert.equal(unavailableDependency(new TypeError('x is undefined')), undefined);
  assert.equal(unavailableDependency(null), undefined);
});
