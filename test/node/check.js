#!/usr/bin/env node
// One Milvus session with the Node SDK (@zilliz/milvus2-sdk-node, pinned in package.json),
// directly against milvus-lite or through milvus-lb with TLS: health, create collection,
// insert, index, load, search, query, delete, drop. One line per step, then a final
// "nodeclient: PASS ..." line; any failure prints "nodeclient: FAIL ..." and exits 1.
//
//   node check.js --address 127.0.0.1:8443 --ca CertificateChain.pem --server-name milvus-demo.milvus.io
//   node check.js --address 127.0.0.1:19530 --plain
'use strict';

const { parseArgs } = require('node:util');
const { MilvusClient, DataType, ErrorCode } = require('@zilliz/milvus2-sdk-node');

const DIM = 8;
const ROWS = 100;

function say(msg) {
  console.log(`nodeclient: ${msg}`);
}

// The SDK reports most Milvus errors inside an OK reply, as a status; make them throw.
function ok(step, res) {
  const status = res && (res.status || res);
  const code = status && status.error_code;
  if (code !== undefined && code !== ErrorCode.SUCCESS) {
    throw new Error(`${step}: ${code}: ${status.reason}`);
  }
  return res;
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

// The SDK turns a failed checkHealth or getVersion into an empty object, hiding the gRPC
// status. probe makes the same call with grpc-js (the SDK's own transport, same channel
// options) to say what the server answered.
function probe(opts) {
  const grpc = require(require.resolve('@grpc/grpc-js', {
    paths: [require.resolve('@zilliz/milvus2-sdk-node')],
  }));
  const creds = opts.plain
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(require('node:fs').readFileSync(opts.ca));
  const options = opts.plain ? {} : { 'grpc.ssl_target_name_override': opts.serverName };
  const client = new grpc.Client(opts.address, creds, options);
  const id = (b) => b;
  return new Promise((resolve) => {
    client.makeUnaryRequest('/milvus.proto.milvus.MilvusService/CheckHealth', id, id,
      Buffer.alloc(0), { deadline: Date.now() + 10000 }, (err) => {
        client.close();
        resolve(err ? `gRPC ${grpc.status[err.code]}: ${err.details}` : 'OK');
      });
  });
}

function randomVectors(n, seed) {
  // A small LCG: the same vectors every run, no dependency.
  let x = seed;
  const next = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: n }, () => Array.from({ length: DIM }, next));
}

async function run(opts) {
  const config = opts.plain
    ? { address: opts.address }
    : {
        address: `https://${opts.address}`,
        tls: { rootCertPath: opts.ca, serverName: opts.serverName },
      };
  config.timeout = 60000;
  const client = new MilvusClient(config);
  try {
    const health = await client.checkHealth();
    if (!health.isHealthy) {
      throw new Error(`checkHealth returned ${JSON.stringify(health)}; the server answered ${await probe(opts)}`);
    }
    const version = ok('getVersion', await client.getVersion()).version;
    say(`checkHealth ok, server ${version}`);

    const name = `nodeclient_${process.pid}_${Date.now() % 1000000}`;
    ok('createCollection', await client.createCollection({
      collection_name: name,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true, autoID: false },
        { name: 'tag', data_type: DataType.VarChar, max_length: 32 },
        { name: 'vector', data_type: DataType.FloatVector, dim: DIM },
      ],
    }));
    say(`create collection ${name} ok`);
    try {
      const vectors = randomVectors(ROWS, 3);
      const data = vectors.map((v, i) => ({ id: i, tag: `t${i % 4}`, vector: v }));
      const ins = ok('insert', await client.insert({ collection_name: name, data }));
      expect(Number(ins.insert_cnt) === ROWS, `insert_cnt ${ins.insert_cnt}, want ${ROWS}`);
      say(`insert ${ROWS} ok`);

      ok('createIndex', await client.createIndex({
        collection_name: name, field_name: 'vector', index_type: 'AUTOINDEX', metric_type: 'L2',
      }));
      say('create index ok');
      ok('loadCollection', await client.loadCollectionSync({ collection_name: name }));
      say('load ok');

      const found = ok('search', await client.search({
        collection_name: name, data: [vectors[11]], limit: 3, output_fields: ['id', 'tag'],
        consistency_level: 'Strong',
      }));
      expect(found.results.length === 3, `search returned ${JSON.stringify(found.results)}`);
      expect(String(found.results[0].id) === '11', `top hit ${JSON.stringify(found.results[0])}, want id 11`);
      say('search ok (top hit 11)');

      const q = ok('query', await client.query({
        collection_name: name, filter: 'tag == "t2"', output_fields: ['id'], consistency_level: 'Strong',
      }));
      expect(q.data.length === ROWS / 4, `query returned ${q.data.length} rows, want ${ROWS / 4}`);
      say('query ok');

      ok('delete', await client.delete({ collection_name: name, filter: 'id in [2, 6, 10]' }));
      const after = ok('query', await client.query({
        collection_name: name, filter: 'tag == "t2"', output_fields: ['id'], consistency_level: 'Strong',
      }));
      expect(after.data.length === ROWS / 4 - 3, `after delete, query returned ${after.data.length} rows`);
      say('delete ok');
    } finally {
      ok('dropCollection', await client.dropCollection({ collection_name: name }));
    }
    const has = ok('hasCollection', await client.hasCollection({ collection_name: name }));
    expect(has.value === false, 'collection still there after drop');
    say('drop ok');
    return version;
  } finally {
    await client.closeConnection();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      address: { type: 'string', default: process.env.MILVUS_ADDRESS || '127.0.0.1:19530' },
      ca: { type: 'string' },
      'server-name': { type: 'string', default: 'milvus-demo.milvus.io' },
      plain: { type: 'boolean', default: process.env.MILVUS_PLAIN === '1' },
    },
  });
  const opts = { address: values.address, ca: values.ca, serverName: values['server-name'], plain: values.plain };
  if (!opts.plain && !opts.ca) {
    console.error('check.js: --ca is required with TLS (or pass --plain)');
    process.exit(2);
  }
  const mode = opts.plain ? 'plain' : `TLS, serverName=${opts.serverName}`;
  try {
    const version = await run(opts);
    say(`PASS via ${opts.address} (${mode}): ${version}, create/insert/index/load/search/query/delete/drop`);
  } catch (err) {
    console.error(err);
    say(`FAIL via ${opts.address} (${mode}): ${err.message}`);
    process.exit(1);
  }
}

main();
