// The "wire" modes: a producer and a consumer that speak the Kafka protocol directly (requests
// encoded with franz-go's kmsg), for measuring the broker rather than the client.
//
//	loadgen wire-produce -brokers H:P -topic T -n N -size S [-acks 1|all] [-batch-records B] [-inflight D]
//	loadgen wire-consume -brokers H:P -topic T [-n N]
//
// wire-produce builds a pool of distinct produce requests once, before the clock starts: every
// partition of the topic gets one uncompressed batch of B records of S random (incompressible)
// bytes per request, with a correct CRC. It then sends them in rotation on one connection, up to
// D requests in flight (Kafka's max.in.flight default is 5), patching only the correlation id, and
// checks every partition's error code and that base offsets advance by exactly B. Per record the
// client costs next to nothing, so on a small machine the broker, not the client, is what is
// measured. A general-purpose client (franz-go, Kafka's perf tools) also builds batches, computes
// CRCs, copies values and tracks every record's promise.
//
// wire-consume fetches every partition from offset 0 to its high watermark with full Fetch
// requests (v12, one in flight, 50 MiB per response, 1 MiB per partition: Kafka's consumer
// defaults), walking batch headers to count records and to check that offsets are dense.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	produceVersion = 9  // flexible, topic names (v13 switched to topic ids)
	fetchVersion   = 12 // flexible, topic names
	poolRequests   = 32 // distinct requests sent in rotation
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// wireConn is one connection with the request header and the response framing.
type wireConn struct {
	c   net.Conn
	r   *bufio.Reader
	fmt *kmsg.RequestFormatter
}

func dialWire(seed string) *wireConn {
	var c net.Conn
	var err error
	if tlsConfig != nil {
		c, err = tls.Dial("tcp", seed, tlsConfig)
	} else {
		c, err = net.Dial("tcp", seed)
	}
	if err != nil {
		die("dial %s: %v", seed, err)
	}
	return &wireConn{c: c, r: bufio.NewReaderSize(c, 1<<20), fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("loadgen-wire"))}
}

// readResponse reads one response into buf (grown as needed) and returns its body after the
// flexible response header (correlation id, then an empty tag buffer).
func (w *wireConn) readResponse(buf []byte, want int32) ([]byte, []byte) {
	var hdr [4]byte
	if _, err := io.ReadFull(w.r, hdr[:]); err != nil {
		die("read: %v", err)
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(w.r, buf); err != nil {
		die("read: %v", err)
	}
	if n < 5 {
		die("response of %d bytes", n)
	}
	if got := int32(binary.BigEndian.Uint32(buf)); got != want {
		die("correlation id %d, expected %d", got, want)
	}
	if buf[4] != 0 {
		die("response header with tagged fields")
	}
	return buf, buf[5:]
}

// topicPartitions asks the broker for the topic's partition ids.
func (w *wireConn) topicPartitions(topic string) []int32 {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	if _, err := w.c.Write(w.fmt.AppendRequest(nil, req, 1)); err != nil {
		die("write: %v", err)
	}
	_, body := w.readResponse(nil, 1)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.SetVersion(12)
	if err := resp.ReadFrom(body); err != nil {
		die("metadata response: %v", err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		die("metadata for %s: %+v", topic, resp.Topics)
	}
	var ps []int32
	for _, p := range resp.Topics[0].Partitions {
		ps = append(ps, p.Partition)
	}
	sort.Slice(ps, func(a, b int) bool { return ps[a] < ps[b] })
	return ps
}

// recordBatch encodes one uncompressed v2 batch of values (no keys, no headers), CRC included.
func recordBatch(values [][]byte, ts int64) []byte {
	var records []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Key: nil, Value: v}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the body after a one-byte zero length
		records = r.AppendTo(records)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp: ts, MaxTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(values)), Records: records,
	}
	b.Length = int32(49 + len(records))
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], crc32c))
	return out
}

func wireProduce(ctx context.Context, seed, topic string, n int64, size int, acks string, batchRecords, inflight int) {
	w := dialWire(seed)
	defer w.c.Close()
	parts := w.topicPartitions(topic)
	perRequest := int64(batchRecords * len(parts))
	if n%perRequest != 0 {
		die("-n %d is not a multiple of %d (batch records x partitions)", n, perRequest)
	}
	var ackCode int16
	switch acks {
	case "1":
		ackCode = 1
	case "all", "-1":
		ackCode = -1
	default:
		die("wire-produce: acks %q (0 has no responses to check)", acks)
	}

	// The pool of requests, built before the clock starts.
	pool := make([][]byte, poolRequests)
	value := make([]byte, size)
	ts := time.Now().UnixMilli()
	for i := range pool {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(produceVersion)
		req.Acks = ackCode
		req.TimeoutMillis = 30000
		t := kmsg.NewProduceRequestTopic()
		t.Topic = topic
		for _, p := range parts {
			values := make([][]byte, batchRecords)
			for j := range values {
				if _, err := rand.Read(value); err != nil {
					die("rand: %v", err)
				}
				values[j] = append([]byte(nil), value...)
			}
			tp := kmsg.NewProduceRequestTopicPartition()
			tp.Partition = p
			tp.Records = recordBatch(values, ts)
			t.Partitions = append(t.Partitions, tp)
		}
		req.Topics = append(req.Topics, t)
		pool[i] = w.fmt.AppendRequest(nil, req, 0)
	}

	requests := n / perRequest
	slots := make(chan struct{}, inflight)
	sent := make(chan time.Time, inflight)
	lat := make([]int64, 0, requests)
	done := make(chan struct{})
	next := make(map[int32]int64, len(parts))
	go func() { // responses, in order
		defer close(done)
		var buf []byte
		for i := int64(0); i < requests; i++ {
			var body []byte
			buf, body = w.readResponse(buf, int32(i+1))
			at := <-sent
			lat = append(lat, int64(time.Since(at)))
			resp := kmsg.NewPtrProduceResponse()
			resp.SetVersion(produceVersion)
			if err := resp.ReadFrom(body); err != nil {
				die("produce response: %v", err)
			}
			got := 0
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						die("produce %s/%d: %v", topic, p.Partition, err)
					}
					if _, seen := next[p.Partition]; !seen {
						next[p.Partition] = p.BaseOffset // the log may hold records already
					}
					if p.BaseOffset != next[p.Partition] {
						die("partition %d: base offset %d, expected %d", p.Partition, p.BaseOffset, next[p.Partition])
					}
					next[p.Partition] += int64(batchRecords)
					got++
				}
			}
			if got != len(parts) {
				die("produce response for %d of %d partitions", got, len(parts))
			}
			<-slots
		}
	}()
	start := time.Now()
	for i := int64(0); i < requests; i++ {
		if ctx.Err() != nil {
			die("timed out after %v with %d of %d requests sent", time.Since(start), i, requests)
		}
		slots <- struct{}{}
		frame := pool[i%poolRequests]
		binary.BigEndian.PutUint32(frame[8:12], uint32(i+1)) // correlation id
		sent <- time.Now()
		if _, err := w.c.Write(frame); err != nil {
			die("write: %v", err)
		}
	}
	<-done
	elapsed := time.Since(start)
	emit(result{Mode: "wire-produce", Records: n, Bytes: n * int64(size), Seconds: elapsed.Seconds(),
		Partitions: len(parts), LatencyMs: percentiles(lat)})
}

func percentiles(l []int64) map[string]float64 {
	if len(l) == 0 {
		return nil
	}
	sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
	at := func(p float64) float64 {
		i := int(p*float64(len(l))+0.5) - 1
		i = max(0, min(i, len(l)-1))
		return float64(l[i]) / 1e6
	}
	return map[string]float64{"p50": at(0.5), "p99": at(0.99), "p99.9": at(0.999), "max": at(1)}
}

func wireConsume(ctx context.Context, seed, topic string, expect int64) {
	w := dialWire(seed)
	defer w.c.Close()
	parts := w.topicPartitions(topic)
	hwm := map[int32]int64{}
	next := map[int32]int64{}
	remaining := map[int32]bool{}
	var total int64
	// one read buffer for every response (a response's batches are walked before the next fetch)
	var buf []byte
	fetch := func(corr int32, build func(*kmsg.FetchRequest)) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(fetchVersion)
		req.ReplicaID = -1
		req.MaxWaitMillis = 500
		req.MinBytes = 1
		req.MaxBytes = 50 << 20
		req.SessionEpoch = -1
		build(req)
		if _, err := w.c.Write(w.fmt.AppendRequest(nil, req, corr)); err != nil {
			die("write: %v", err)
		}
		var body []byte
		buf, body = w.readResponse(buf, corr)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.SetVersion(fetchVersion)
		if err := resp.ReadFrom(body); err != nil {
			die("fetch response: %v", err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			die("fetch: %v", err)
		}
		return resp
	}
	// The high watermarks, from an empty fetch at offset 0 (MaxBytes 0 per partition).
	// the topic with the partitions in want, each from next[p] (0 when absent), up to maxBytes
	fetchTopic := func(want func(int32) bool, maxBytes int32) kmsg.FetchRequestTopic {
		t := kmsg.NewFetchRequestTopic()
		t.Topic = topic
		for _, p := range parts {
			if want(p) {
				fp := kmsg.NewFetchRequestTopicPartition()
				fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.LogStartOffset = p, next[p], maxBytes, -1
				t.Partitions = append(t.Partitions, fp)
			}
		}
		return t
	}
	first := fetch(1, func(req *kmsg.FetchRequest) {
		req.MaxWaitMillis = 0
		req.Topics = append(req.Topics, fetchTopic(func(int32) bool { return true }, 0))
	})
	for _, t := range first.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				die("fetch %s/%d: %v", topic, p.Partition, err)
			}
			hwm[p.Partition] = p.HighWatermark
			total += p.HighWatermark
			if p.HighWatermark > 0 {
				remaining[p.Partition] = true
			}
		}
	}
	if len(hwm) != len(parts) {
		die("fetch answered %d of %d partitions", len(hwm), len(parts))
	}
	if expect > 0 && total != expect {
		die("topic %s holds %d records (sum of high watermarks), expected %d", topic, total, expect)
	}
	var records, bytes int64
	start := time.Now()
	for corr := int32(2); len(remaining) > 0; corr++ {
		if ctx.Err() != nil {
			die("timed out after %v: %d of %d records consumed", time.Since(start), records, total)
		}
		resp := fetch(corr, func(req *kmsg.FetchRequest) {
			req.Topics = append(req.Topics, fetchTopic(func(p int32) bool { return remaining[p] }, 1<<20))
		})
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					die("fetch %s/%d: %v", topic, p.Partition, err)
				}
				b := p.RecordBatches
				for len(b) >= 61 {
					base := int64(binary.BigEndian.Uint64(b[0:8]))
					length := int(binary.BigEndian.Uint32(b[8:12]))
					if len(b) < 12+length {
						break // a partial batch at the end of the response
					}
					last := base + int64(binary.BigEndian.Uint32(b[23:27]))
					if last >= next[p.Partition] {
						if base > next[p.Partition] {
							die("partition %d: batch at %d, expected %d", p.Partition, base, next[p.Partition])
						}
						records += last + 1 - next[p.Partition]
						next[p.Partition] = last + 1
					}
					bytes += int64(12 + length)
					b = b[12+length:]
				}
				if next[p.Partition] >= hwm[p.Partition] {
					delete(remaining, p.Partition)
				}
			}
		}
	}
	elapsed := time.Since(start)
	if records != total {
		die("consumed %d records, expected %d", records, total)
	}
	emit(result{Mode: "wire-consume", Records: records, Bytes: bytes, Seconds: elapsed.Seconds(),
		Partitions: len(hwm)})
}
