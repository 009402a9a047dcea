// loadgen: a small franz-go load generator for the gregor-vs-Kafka benchmark.
//
//	loadgen create  -brokers H:P -topic T -partitions P
//	loadgen produce -brokers H:P -topic T -n N -size S [-rate R] [-acks 1|all|0] [-producers K] ...
//	loadgen consume -brokers H:P -topic T [-n N]
//	loadgen wire-produce / wire-consume: the same over raw protocol requests (see wire.go)
//
// -tls-ca FILE (any mode) connects with TLS, trusting the CA certificates in FILE (PEM); the
// result then names the negotiated protocol version and cipher suite.
//
// Every mode prints exactly one line "RESULT {json}" on stdout on success and exits 0; any
// error (topic creation, a failed record, a fetch error, a timeout) makes it exit non-zero
// with the reason on stderr.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	logOpt     = kgo.WithLogger(nil)
	tlsConfig  *tls.Config  // nil: plaintext
	negotiated atomic.Value // "TLS 1.3 TLS_AES_128_GCM_SHA256", from the last handshake
)

// newClient is kgo.NewClient with the logger and, under -tls-ca, TLS.
func newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	opts = append(opts, logOpt)
	if tlsConfig != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsConfig))
	}
	return kgo.NewClient(opts...)
}

func loadTLS(caFile string) *tls.Config {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		die("-tls-ca: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		die("-tls-ca %s: no PEM certificates", caFile)
	}
	return &tls.Config{RootCAs: roots, VerifyConnection: func(cs tls.ConnectionState) error {
		negotiated.Store(tls.VersionName(cs.Version) + " " + tls.CipherSuiteName(cs.CipherSuite))
		return nil
	}}
}

type result struct {
	Mode          string             `json:"mode"`
	Records       int64              `json:"records"`
	Bytes         int64              `json:"bytes"`
	Seconds       float64            `json:"seconds"`
	RecordsPerSec float64            `json:"records_per_sec"`
	MiBPerSec     float64            `json:"mib_per_sec"`
	LatencyMs     map[string]float64 `json:"latency_ms,omitempty"`
	TargetRate    float64            `json:"target_rate,omitempty"`
	Partitions    int                `json:"partitions,omitempty"`
	TLS           string             `json:"tls,omitempty"`
}

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...)
	os.Exit(1)
}

func emit(r result) {
	if r.Seconds > 0 {
		r.RecordsPerSec = float64(r.Records) / r.Seconds
		r.MiBPerSec = float64(r.Bytes) / r.Seconds / (1 << 20)
	}
	if v, ok := negotiated.Load().(string); ok {
		r.TLS = v
	}
	b, _ := json.Marshal(r)
	fmt.Printf("RESULT %s\n", b)
}

func main() {
	if len(os.Args) < 2 {
		die("usage: loadgen create|produce|consume [flags]")
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "seed brokers, comma separated")
	topic := fs.String("topic", "bench", "topic")
	partitions := fs.Int("partitions", 8, "partitions (create)")
	n := fs.Int64("n", 1000000, "records to produce (produce) / expected records, 0 = whatever is there (consume)")
	size := fs.Int("size", 1024, "record value size in bytes (produce)")
	rate := fs.Float64("rate", 0, "total records/s over all producers, 0 = unthrottled (produce)")
	acks := fs.String("acks", "1", "acks: 0, 1 or all (produce)")
	producers := fs.Int("producers", 1, "independent producer clients, each its own goroutine and connections (produce)")
	linger := fs.Duration("linger", 10*time.Millisecond, "producer linger (franz-go default 10ms)")
	batchBytes := fs.Int("batch-bytes", 1000012, "max bytes of one record batch (produce)")
	maxBuffered := fs.Int("max-buffered", 50000, "max buffered records per producer client (franz-go default 50000)")
	partitioner := fs.String("partitioner", "sticky", "sticky (franz-go default for unkeyed records) or roundrobin (produce)")
	idempotent := fs.Bool("idempotent", false, "idempotent producer (needs acks=all and InitProducerId)")
	batchRecords := fs.Int("batch-records", 16, "records per partition per request (wire-produce; 16 x 1 KiB is Kafka's batch.size)")
	inflight := fs.Int("inflight", 5, "requests in flight (wire-produce; Kafka's max.in.flight.requests.per.connection)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up (and fail) after this long")
	verbose := fs.Bool("v", false, "franz-go client logs (info level) to stderr")
	tlsCA := fs.String("tls-ca", "", "connect with TLS, trusting the CA certificates in this PEM file")
	_ = fs.Parse(os.Args[2:])
	if *tlsCA != "" {
		tlsConfig = loadTLS(*tlsCA)
	}
	if *verbose {
		logOpt = kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil))
	}

	seeds := strings.Split(*brokers, ",")
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	switch mode {
	case "create":
		create(ctx, seeds, *topic, *partitions)
	case "produce":
		produce(ctx, seeds, *topic, *n, *size, *rate, *acks, *producers, *linger, *batchBytes,
			*maxBuffered, *partitioner, *idempotent)
	case "consume":
		consume(ctx, seeds, *topic, *n)
	case "wire-produce":
		wireProduce(ctx, seeds[0], *topic, *n, *size, *acks, *batchRecords, *inflight)
	case "wire-consume":
		wireConsume(ctx, seeds[0], *topic, *n)
	default:
		die("unknown mode %q", mode)
	}
}

// ---- create ---------------------------------------------------------------------------

func create(ctx context.Context, seeds []string, topic string, partitions int) {
	cl, err := newClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		die("client: %v", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 60000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = topic
	t.NumPartitions = int32(partitions)
	t.ReplicationFactor = 1
	req.Topics = append(req.Topics, t)
	start := time.Now()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		die("CreateTopics %s: %v", topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			msg := ""
			if rt.ErrorMessage != nil {
				msg = *rt.ErrorMessage
			}
			die("CreateTopics %s: %v %s", topic, err, msg)
		}
	}
	for {
		mreq := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		mreq.Topics = append(mreq.Topics, mt)
		mresp, err := mreq.RequestWith(ctx, cl)
		if err == nil && len(mresp.Topics) == 1 && mresp.Topics[0].ErrorCode == 0 &&
			len(mresp.Topics[0].Partitions) == partitions {
			ok := true
			for _, p := range mresp.Topics[0].Partitions {
				if p.ErrorCode != 0 || p.Leader < 0 {
					ok = false
				}
			}
			if ok {
				warm(ctx, seeds, topic, partitions)
				emit(result{Mode: "create", Seconds: time.Since(start).Seconds(), Partitions: partitions})
				return
			}
		}
		if ctx.Err() != nil {
			die("topic %s: partitions never all got a leader: %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// warm writes one 1-byte record to every partition (acks=1) and waits for all of them, so
// that measured runs do not include the broker's asynchronous partition set-up (Kafka answers
// NOT_LEADER_OR_FOLLOWER for a while after CreateTopics on many partitions).
func warm(ctx context.Context, seeds []string, topic string, partitions int) {
	cl, err := newClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.RecordDeliveryTimeout(3*time.Minute))
	if err != nil {
		die("client: %v", err)
	}
	defer cl.Close()
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for p := 0; p < partitions; p++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Partition: int32(p), Value: []byte{'w'}}, func(r *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, fmt.Sprintf("partition %d: %v", r.Partition, err))
			}
			wg.Done()
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		die("warm-up write to %s failed: %v", topic, e)
	}
}

// ---- produce --------------------------------------------------------------------------

func produce(ctx context.Context, seeds []string, topic string, n int64, size int, rate float64,
	acks string, producers int, linger time.Duration, batchBytes, maxBuffered int,
	partitioner string, idempotent bool) {
	if producers < 1 || n < int64(producers) {
		die("need producers >= 1 and n >= producers")
	}
	// One pool of random (incompressible) bytes; each record's value is a random window of it.
	pool := make([]byte, 8<<20+size)
	if _, err := rand.Read(pool); err != nil {
		die("rand: %v", err)
	}

	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchMaxBytes(int32(batchBytes)),
		kgo.MaxBufferedRecords(maxBuffered),
		kgo.RecordDeliveryTimeout(2 * time.Minute),
	}
	switch acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	default:
		die("bad -acks %q", acks)
	}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	switch partitioner {
	case "sticky":
	case "roundrobin":
		opts = append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	default:
		die("bad -partitioner %q", partitioner)
	}

	clients := make([]*kgo.Client, producers)
	for i := range clients {
		cl, err := newClient(opts...)
		if err != nil {
			die("client: %v", err)
		}
		defer cl.Close()
		// Connect and load metadata before the clock starts.
		if err := cl.Ping(ctx); err != nil {
			die("ping: %v", err)
		}
		clients[i] = cl
	}

	lat := make([]int64, n) // per-record latency, ns
	var done, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < producers; i++ {
		cnt := n / int64(producers)
		if int64(i) < n%int64(producers) {
			cnt++
		}
		wg.Add(1)
		go func(cl *kgo.Client, cnt int64, seed uint64) {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(seed, 42))
			var interval time.Duration
			if rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(producers) / rate)
			}
			cb := func(sent time.Time) func(*kgo.Record, error) {
				return func(_ *kgo.Record, err error) {
					if err != nil {
						if failed.Add(1) == 1 {
							firstErr.Store(err.Error())
						}
						return
					}
					lat[done.Add(1)-1] = int64(time.Since(sent))
				}
			}
			for j := int64(0); j < cnt; j++ {
				sent := time.Now()
				if interval > 0 {
					// Open loop: record j is due at start + j*interval; latency counts from
					// then, so a stalled broker cannot hide its stall (coordinated omission).
					due := start.Add(time.Duration(j) * interval)
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
					sent = due
				}
				off := rng.IntN(len(pool) - size)
				r := &kgo.Record{Value: pool[off : off+size]}
				cl.Produce(ctx, r, cb(sent))
				if ctx.Err() != nil {
					return
				}
			}
			if err := cl.Flush(ctx); err != nil && failed.Add(1) == 1 {
				firstErr.Store("flush: " + err.Error())
			}
		}(clients[i], cnt, uint64(i)+1)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		die("timed out after %v with %d/%d records acknowledged", elapsed, done.Load(), n)
	}
	if f := failed.Load(); f > 0 {
		die("%d of %d records failed; first error: %v", f, n, firstErr.Load())
	}
	got := done.Load()
	if got != n {
		die("only %d of %d records acknowledged", got, n)
	}
	l := lat[:got]
	sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
	pct := func(p float64) float64 {
		idx := int(p*float64(len(l))+0.5) - 1
		if idx < 0 {
			idx = 0
		}
		if idx >= len(l) {
			idx = len(l) - 1
		}
		return float64(l[idx]) / 1e6
	}
	var sum float64
	for _, v := range l {
		sum += float64(v)
	}
	emit(result{
		Mode: "produce", Records: got, Bytes: got * int64(size), Seconds: elapsed.Seconds(),
		TargetRate: rate,
		LatencyMs: map[string]float64{
			"p50": pct(0.50), "p99": pct(0.99), "p99.9": pct(0.999), "max": pct(1.0),
			"mean": sum / float64(len(l)) / 1e6,
		},
	})
}

// ---- consume --------------------------------------------------------------------------

func consume(ctx context.Context, seeds []string, topic string, expect int64) {
	admin, err := newClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		die("client: %v", err)
	}
	defer admin.Close()
	// Partitions, then each partition's high watermark: consume exactly up to there.
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, admin)
	if err != nil {
		die("metadata: %v", err)
	}
	if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0 {
		die("metadata for %s: %+v", topic, mresp.Topics)
	}
	lreq := kmsg.NewPtrListOffsetsRequest()
	lreq.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range mresp.Topics[0].Partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition = p.Partition
		lp.Timestamp = -1 // latest
		lt.Partitions = append(lt.Partitions, lp)
	}
	lreq.Topics = append(lreq.Topics, lt)
	shards := admin.RequestSharded(ctx, lreq)
	hwm := map[int32]int64{}
	var total int64
	for _, sh := range shards {
		if sh.Err != nil {
			die("ListOffsets: %v", sh.Err)
		}
		for _, t := range sh.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					die("ListOffsets %s/%d: %v", topic, p.Partition, err)
				}
				hwm[p.Partition] = p.Offset
				total += p.Offset
			}
		}
	}
	if len(hwm) != len(mresp.Topics[0].Partitions) {
		die("ListOffsets answered %d of %d partitions", len(hwm), len(mresp.Topics[0].Partitions))
	}
	if expect > 0 && total != expect {
		die("topic %s holds %d records (sum of high watermarks), expected %d", topic, total, expect)
	}

	assign := map[int32]kgo.Offset{}
	remaining := 0
	for p, h := range hwm {
		if h > 0 {
			assign[p] = kgo.NewOffset().AtStart()
			remaining++
		}
	}
	cl, err := newClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))
	if err != nil {
		die("client: %v", err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		die("ping: %v", err)
	}
	next := map[int32]int64{}
	var records, bytes int64
	start := time.Now()
	for remaining > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			die("timed out after %v: %d of %d records consumed", time.Since(start), records, total)
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("%s/%d: %w", t, p, err)
			}
		})
		if ferr != nil && !errors.Is(ferr, context.DeadlineExceeded) {
			die("fetch: %v", ferr)
		}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, r := range fp.Records {
				if r.Offset != next[fp.Partition] {
					die("partition %d: got offset %d, expected %d", fp.Partition, r.Offset, next[fp.Partition])
				}
				next[fp.Partition] = r.Offset + 1
				records++
				bytes += int64(len(r.Value) + len(r.Key))
			}
			if len(fp.Records) > 0 && next[fp.Partition] == hwm[fp.Partition] {
				remaining--
			}
		})
	}
	elapsed := time.Since(start)
	if records != total {
		die("consumed %d records, expected %d", records, total)
	}
	emit(result{Mode: "consume", Records: records, Bytes: bytes, Seconds: elapsed.Seconds(),
		Partitions: len(hwm)})
}
