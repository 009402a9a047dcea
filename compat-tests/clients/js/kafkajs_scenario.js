#!/usr/bin/env node
// kafkajs 2.2.4 against a broker: admin, idempotent producer, consumer group, group and topic
// administration. Prints ONE JSON object on stdout: {steps: {name: {ok: value} | {error: {...}}},
// ...}; the pytest module (compat-tests/tests/test_clients_kafkajs.py) asserts it exactly.
// Every step is bounded (STEP_MS), the whole run by a watchdog (WATCHDOG_MS) that prints what
// it has and exits 2. Bytes (keys, values, header values) are printed as hex, null as null.
//
// usage: node kafkajs_scenario.js --bootstrap host:port --topic T --topic2 T2 --group G
//        --group2 G2 --ts-base MS
'use strict'

const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes, AssignerProtocol } = require('kafkajs')

const STEP_MS = 15000
const CONSUME_MS = 25000
const WATCHDOG_MS = 55000

const args = {}
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
}
for (const k of ['bootstrap', 'topic', 'topic2', 'group', 'group2', 'ts-base']) {
  if (!args[k]) {
    process.stderr.write(`missing --${k}\n`)
    process.exit(64)
  }
}
const T = args.topic
const T2 = args.topic2
const G = args.group
const G2 = args.group2
const TS_BASE = Number(args['ts-base'])
const N = 60
const PARTITIONS = 3

const out = { steps: {}, order: [] }
let printed = false
function finish(code) {
  if (!printed) {
    printed = true
    process.stdout.write(JSON.stringify(out) + '\n')
  }
  process.exit(code)
}
const watchdog = setTimeout(() => {
  out.watchdog = `run exceeded ${WATCHDOG_MS} ms`
  finish(2)
}, WATCHDOG_MS)

const hex = b => (b === null || b === undefined ? null : Buffer.from(b).toString('hex'))

function errInfo(e) {
  if (!e) return null
  const o = { name: e.name, type: e.type || null, message: e.message }
  if (e.code !== undefined) o.code = e.code
  if (e.groups) {
    o.groups = e.groups.map(g => ({
      groupId: g.groupId,
      errorCode: g.errorCode,
      type: g.error ? g.error.type : null,
    }))
  }
  if (e.partitions) {
    o.partitions = e.partitions.map(p => ({
      partition: p.partition,
      offset: p.offset,
      type: p.error ? p.error.type || p.error.name : null,
    }))
  }
  if (e.errors) o.errors = e.errors.map(errInfo)
  if (e.cause) o.cause = errInfo(e.cause)
  if (e.originalError) o.originalError = errInfo(e.originalError)
  return o
}

function withTimeout(promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        const e = new Error(`${what}: no answer in ${ms} ms`)
        e.name = 'StepTimeout'
        reject(e)
      }, ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

// Runs fn, records {ok: value} or {error}, never throws. Returns the value (undefined on error).
async function step(name, fn, ms = STEP_MS) {
  const t0 = Date.now()
  try {
    const v = await withTimeout(Promise.resolve().then(fn), ms, name)
    out.steps[name] = { ok: v === undefined ? null : v, ms: Date.now() - t0 }
    out.order.push(name)
    return v
  } catch (e) {
    out.steps[name] = { error: errInfo(e), ms: Date.now() - t0 }
    out.order.push(name)
    return undefined
  }
}

// step() that retries fn for up to `forMs` while it fails: for reads right after a change
// that Kafka's broker applies asynchronously (new partitions). The failed attempts' errors are
// kept in out.retried[name].
async function retriedStep(name, fn, forMs = 5000) {
  const deadline = Date.now() + forMs
  return step(name, async () => {
    for (;;) {
      try {
        return await fn()
      } catch (e) {
        if (Date.now() > deadline) throw e
        out.retried = out.retried || {}
        ;(out.retried[name] = out.retried[name] || []).push(errInfo(e))
        await new Promise(r => setTimeout(r, 250))
      }
    }
  })
}

const logs = []
const logCreator = () => ({ namespace, level, label, log }) => {
  const line = `${label} [${namespace}] ${log.message} ${JSON.stringify(
    Object.fromEntries(Object.entries(log).filter(([k]) => !['message', 'timestamp', 'logger'].includes(k)))
  )}`
  process.stderr.write(line + '\n')
  if (logs.length < 200) logs.push(line)
}

const kafka = new Kafka({
  clientId: 'gregor-compat-kafkajs',
  brokers: [args.bootstrap],
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  logLevel: logLevel.WARN,
  logCreator,
})

// --- the records -----------------------------------------------------------------------------
// record i goes to partition i % 3; within a partition in index order, so it lands at offset
// floor(i / 3). Two sends per partition: the first 10 records gzip-compressed, the next 10 not.
function record(i) {
  const value = i % 10 === 7
    ? Buffer.from([0x00, 0xff, 0x80, i, 0x0a, 0x09])  // binary, with NUL/newline/tab bytes
    : Buffer.from(`value-${i}-\u00e9\u2713`, 'utf8')
  return {
    partition: i % PARTITIONS,
    key: Buffer.from(`key-${i}`),
    value,
    timestamp: String(TS_BASE + i),
    headers: {
      idx: Buffer.from(String(i)),
      dup: [Buffer.from(`a${i}`), Buffer.from(`b${i}`)],  // a repeated header key
      empty: Buffer.alloc(0),
    },
  }
}

function flatHeaders(h) {
  const outH = []
  for (const k of Object.keys(h || {})) {
    const v = h[k]
    for (const one of Array.isArray(v) ? v : [v]) outH.push([k, hex(one)])
  }
  return outH
}

async function main() {
  const admin = kafka.admin({ retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 } })
  await step('admin.connect', () => admin.connect())

  // ---- topics ----
  await step('createTopics', () =>
    admin.createTopics({
      topics: [
        {
          topic: T,
          numPartitions: PARTITIONS,
          replicationFactor: 1,
          configEntries: [
            { name: 'max.message.bytes', value: '200000' },
            { name: 'retention.ms', value: '86400000' },
          ],
        },
      ],
      timeout: 10000,
    }))
  await step('createTopics.again', () =>
    admin.createTopics({ topics: [{ topic: T, numPartitions: PARTITIONS }], timeout: 10000 }))
  await step('createTopics.rf3', () =>
    admin.createTopics({
      topics: [{ topic: T2 + '-rf3', numPartitions: 1, replicationFactor: 3 }],
      timeout: 10000,
    }))
  await step('listTopics', async () => (await admin.listTopics()).sort())
  await step('fetchTopicMetadata', () => admin.fetchTopicMetadata({ topics: [T] }))
  await step('describeCluster', () => admin.describeCluster())
  await step('describeConfigs', () =>
    admin.describeConfigs({
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: T,
          configNames: ['cleanup.policy', 'max.message.bytes', 'retention.ms'],
        },
      ],
      includeSynonyms: false,
    }))

  // ---- produce ----
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  })
  await step('producer.connect', () => producer.connect())
  const acked = []
  await step('produce', async () => {
    const sends = []
    for (const round of [0, 1]) {
      for (let p = 0; p < PARTITIONS; p++) {
        const idx = []
        for (let i = 0; i < N; i++) {
          if (i % PARTITIONS === p && Math.floor(i / PARTITIONS) >= round * 10 &&
              Math.floor(i / PARTITIONS) < round * 10 + 10) idx.push(i)
        }
        const res = await producer.send({
          topic: T,
          acks: -1,
          compression: round === 0 ? CompressionTypes.GZIP : CompressionTypes.None,
          messages: idx.map(record),
        })
        sends.push(res.map(r => ({
          topicName: r.topicName, partition: r.partition, errorCode: r.errorCode,
          baseOffset: r.baseOffset, logAppendTime: r.logAppendTime, logStartOffset: r.logStartOffset,
        })))
        idx.forEach((i, j) => acked.push({ i, partition: res[0].partition,
          offset: String(BigInt(res[0].baseOffset) + BigInt(j)) }))
      }
    }
    return sends
  })
  out.acked = acked.sort((a, b) => a.i - b.i)
  await step('producer.disconnect', () => producer.disconnect())

  await step('fetchTopicOffsets', () => admin.fetchTopicOffsets(T))
  await step('fetchTopicOffsetsByTimestamp.31', () =>
    admin.fetchTopicOffsetsByTimestamp(T, TS_BASE + 31))
  await step('fetchTopicOffsetsByTimestamp.0', () =>
    admin.fetchTopicOffsetsByTimestamp(T, TS_BASE))
  await step('fetchTopicOffsetsByTimestamp.after', () =>
    admin.fetchTopicOffsetsByTimestamp(T, TS_BASE + 1000))

  // ---- consumer group ----
  const consumer = kafka.consumer({
    groupId: G,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 500,
    allowAutoTopicCreation: false,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  })
  const consumed = []
  await step('consumer.connect', () => consumer.connect())
  await step('consumer.subscribe', () => consumer.subscribe({ topics: [T], fromBeginning: true }))
  await step('consume', () => new Promise((resolve, reject) => {
    // kafkajs restarts the consumer after retriable errors (Kafka answers the very first
    // JoinGroup/FindCoordinator of a fresh broker with GROUP_LOAD_IN_PROGRESS while it creates
    // __consumer_offsets): record those, fail on the others
    out.crashes = []
    consumer.on(consumer.events.CRASH, ev => {
      out.crashes.push({ error: errInfo(ev.payload.error), restart: ev.payload.restart })
      if (!ev.payload.restart) reject(ev.payload.error)
    })
    consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        consumed.push({
          topic,
          partition,
          offset: message.offset,
          timestamp: message.timestamp,
          key: hex(message.key),
          value: hex(message.value),
          headers: flatHeaders(message.headers),
        })
        if (consumed.length >= N) resolve(consumed.length)
      },
    }).catch(reject)
  }), CONSUME_MS)
  // a little longer: anything beyond the 60 records would show up here
  await new Promise(r => setTimeout(r, 500))
  out.consumed = consumed
  await step('describeGroups.stable', async () => {
    const d = await admin.describeGroups([G])
    return d.groups.map(g => ({
      ...g,
      members: g.members.map(m => ({
        memberId: m.memberId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: (() => {
          const md = AssignerProtocol.MemberMetadata.decode(m.memberMetadata)
          return { ...md, userData: hex(md.userData) }
        })(),
        memberAssignment: (() => {
          const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment)
          return a && { ...a, userData: hex(a.userData) }
        })(),
      })),
    }))
  })
  await step('commitOffsets', () => consumer.commitOffsets(
    [0, 1, 2].map(p => ({ topic: T, partition: p, offset: '20' }))))
  await step('fetchOffsets', () => admin.fetchOffsets({ groupId: G, topics: [T] }))
  await step('consumer.disconnect', () => consumer.disconnect())
  // right after the LeaveGroup: the group must already be Empty
  await step('deleteGroups', () => admin.deleteGroups([G]))
  await step('describeGroups.deleted', () => admin.describeGroups([G]))
  await step('fetchOffsets.deleted', () => admin.fetchOffsets({ groupId: G, topics: [T] }))
  await step('deleteGroups.unknown', () => admin.deleteGroups([G + '-never']))

  // ---- offsets of a group without members ----
  await step('setOffsets', () => admin.setOffsets({
    groupId: G2,
    topic: T,
    partitions: [{ partition: 0, offset: '7' }, { partition: 1, offset: '8' }, { partition: 2, offset: '9' }],
  }))
  await step('fetchOffsets.g2', () => admin.fetchOffsets({ groupId: G2, topics: [T] }))
  await step('listGroups', async () => {
    const { groups } = await admin.listGroups()
    return groups.filter(g => g.groupId === G || g.groupId === G2)
  })
  await step('describeGroups.empty', () => admin.describeGroups([G2]))
  await step('deleteGroups.g2', () => admin.deleteGroups([G2]))

  // ---- topic administration ----
  await step('alterConfigs', () => admin.alterConfigs({
    validateOnly: false,
    resources: [{
      type: ConfigResourceTypes.TOPIC,
      name: T,
      configEntries: [{ name: 'retention.ms', value: '3600000' }],
    }],
  }))
  // Kafka's broker learns the change from its controller asynchronously: poll a little
  await step('describeConfigs.altered', async () => {
    const deadline = Date.now() + 10000
    for (;;) {
      const d = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: T, configNames: ['retention.ms', 'max.message.bytes'] }],
        includeSynonyms: false,
      })
      const v = d.resources[0].configEntries.find(e => e.configName === 'retention.ms')
      if ((v && v.configValue === '3600000') || Date.now() > deadline) return d
      await new Promise(r => setTimeout(r, 200))
    }
  })

  await step('createTopics.t2', () =>
    admin.createTopics({ topics: [{ topic: T2, numPartitions: 1 }], timeout: 10000 }))
  await step('createPartitions', () =>
    admin.createPartitions({ topicPartitions: [{ topic: T2, count: 3 }], timeout: 10000 }))
  await step('fetchTopicMetadata.t2', async () => {
    const deadline = Date.now() + 10000
    for (;;) {
      const md = await admin.fetchTopicMetadata({ topics: [T2] })
      if (md.topics[0].partitions.length === 3 || Date.now() > deadline) return md
      await new Promise(r => setTimeout(r, 200))
    }
  })
  await step('createPartitions.shrink', () =>
    admin.createPartitions({ topicPartitions: [{ topic: T2, count: 2 }], timeout: 10000 }))

  const p2 = kafka.producer({ allowAutoTopicCreation: false })
  await step('produce.t2', async () => {
    await p2.connect()
    try {
      const res = await p2.send({
        topic: T2,
        acks: -1,
        messages: [0, 1, 2, 3, 4].map(i => ({ partition: 0, key: `k${i}`, value: `v${i}` })),
      })
      return res.map(r => ({ partition: r.partition, errorCode: r.errorCode, baseOffset: r.baseOffset }))
    } finally {
      await p2.disconnect()
    }
  })
  // (also makes T2 one of the admin's target topics: deleteTopicRecords looks its leaders up
  // in the cached metadata and fails with KafkaJSBrokerNotFound otherwise)
  await retriedStep('fetchTopicOffsets.t2.before', () => admin.fetchTopicOffsets(T2))
  await step('deleteTopicRecords', () =>
    admin.deleteTopicRecords({ topic: T2, partitions: [{ partition: 0, offset: '3' }] }))
  await step('fetchTopicOffsets.t2', () => admin.fetchTopicOffsets(T2))
  await step('deleteTopics', () => admin.deleteTopics({ topics: [T2], timeout: 10000 }))
  await step('listTopics.afterDelete', async () => {
    const deadline = Date.now() + 10000
    for (;;) {
      const topics = (await admin.listTopics()).sort()
      if (!topics.includes(T2) || Date.now() > deadline) return topics
      await new Promise(r => setTimeout(r, 200))
    }
  })
  await step('deleteTopics.unknown', () =>
    admin.deleteTopics({ topics: [T2 + '-never'], timeout: 5000 }))

  await step('admin.disconnect', () => admin.disconnect())
}

main()
  .then(() => {
    clearTimeout(watchdog)
    out.logs = logs
    finish(0)
  })
  .catch(e => {
    out.fatal = errInfo(e)
    out.logs = logs
    finish(1)
  })
