package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

func saramaSource(s sarama.ConfigSource) string {
	switch s {
	case sarama.SourceTopic:
		return "DYNAMIC_TOPIC_CONFIG"
	case sarama.SourceDynamicBroker:
		return "DYNAMIC_BROKER_CONFIG"
	case sarama.SourceDynamicDefaultBroker:
		return "DYNAMIC_DEFAULT_BROKER_CONFIG"
	case sarama.SourceStaticBroker:
		return "STATIC_BROKER_CONFIG"
	case sarama.SourceDefault:
		return "DEFAULT_CONFIG"
	}
	return "UNKNOWN"
}

type saramaHandler struct {
	mu   sync.Mutex
	want int
	seen int
	done chan struct{}
	sess sarama.ConsumerGroupSession
}

func (h *saramaHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.sess = sess
	h.mu.Unlock()
	return nil
}
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			r := Rec{P: m.Partition, O: m.Offset, T: m.Timestamp.UnixMilli(), K: enc(m.Key), V: enc(m.Value), H: [][2]string{}}
			for _, hd := range m.Headers {
				r.H = append(r.H, [2]string{string(hd.Key), encHeader(hd.Value)})
			}
			sess.MarkMessage(m, "")
			h.mu.Lock()
			resMu.Lock()
			res.Consumed = append(res.Consumed, r)
			resMu.Unlock()
			h.seen++
			if h.seen == h.want {
				close(h.done)
			}
			h.mu.Unlock()
		case <-sess.Context().Done():
			return nil
		}
	}
}

// saramaVersion maps "2.8.0.0" (the V2_8_0_0 constant), "2.8.0" or "newest" to sarama's
// KafkaVersion; only versions sarama knows are accepted.
func saramaVersion(s string) (sarama.KafkaVersion, error) {
	if s == "newest" {
		return sarama.MaxVersion, nil
	}
	for _, v := range sarama.SupportedVersions {
		name := v.String()
		if !strings.HasPrefix(name, "0.") {
			name += ".0"
		}
		if s == name || s == v.String() {
			return v, nil
		}
	}
	return sarama.KafkaVersion{}, fmt.Errorf("sarama does not know Kafka version %q", s)
}

func runSarama() {
	v, err := saramaVersion(*version)
	if err != nil {
		fail("version", err)
	}
	res.Version = *version
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = "gocompat-sarama"
	cfg.Net.DialTimeout = opTimeout
	cfg.Net.ReadTimeout = opTimeout
	cfg.Net.WriteTimeout = opTimeout
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Metadata.Retry.Max = 20
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Admin.Timeout = opTimeout
	cfg.Admin.Retry.Max = 20
	cfg.Admin.Retry.Backoff = 250 * time.Millisecond
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Timeout = opTimeout
	cfg.Producer.Retry.Max = 20
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cfg.Consumer.Group.Rebalance.Timeout = opTimeout
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = time.Second
	cfg.Consumer.Return.Errors = true
	saramaSASL(cfg)

	brokers := []string{*bootstrap}
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		fail("NewClusterAdmin", err)
	}
	defer admin.Close()

	retention := "3600000"
	err = admin.CreateTopic(*topic, &sarama.TopicDetail{NumPartitions: Partitions, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention}}, false)
	res.Created = errString(err)
	if err != nil {
		fail("CreateTopic", err)
	}

	// Produce: record i to partition i%3, synchronously, all in one SendMessages call.
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		fail("NewSyncProducer", err)
	}
	msgs := make([]*sarama.ProducerMessage, *records)
	for i := range msgs {
		m := &sarama.ProducerMessage{Topic: *topic, Partition: partitionOf(i), Timestamp: timestampOf(i),
			Value: sarama.ByteEncoder(value(i))}
		if k := key(i); k != nil {
			m.Key = sarama.ByteEncoder(k)
		}
		for _, hd := range headers(i) {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(hd[0]), Value: []byte(hd[1])})
		}
		msgs[i] = m
	}
	// The topic's partitions may take a moment to have a leader in the producer's metadata.
	deadlineProduce := time.Now().Add(20 * time.Second)
	for {
		err = producer.SendMessages(msgs)
		if err == nil || time.Now().After(deadlineProduce) {
			break
		}
		// only retry when nothing was stored: a partial success would duplicate records
		if pe, ok := err.(sarama.ProducerErrors); !ok || len(pe) != len(msgs) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		fail("SendMessages", err)
	}
	for _, m := range msgs {
		res.Produced = append(res.Produced, [2]int64{int64(m.Partition), m.Offset})
	}
	producer.Close()

	// Consume in the group from the earliest offset until every record is in.
	cg, err := sarama.NewConsumerGroup(brokers, *group, cfg)
	if err != nil {
		fail("NewConsumerGroup", err)
	}
	h := &saramaHandler{want: *records, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	consumeErr := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{*topic}, h); err != nil {
				consumeErr <- err
				return
			}
		}
		consumeErr <- nil
	}()
	go func() {
		for e := range cg.Errors() {
			note("consumer group error: " + e.Error())
		}
	}()
	select {
	case <-h.done:
	case err := <-consumeErr:
		fail("Consume", fmt.Errorf("consumer stopped: %v", err))
	case <-time.After(consumeTimeout):
		fail("Consume", fmt.Errorf("read %d of %d records in %s", h.seen, *records, consumeTimeout))
	}
	// Describe the group while its member is active; the handler goes on appending whatever
	// else arrives (nothing should) until the commit.
	res.ActiveGroup = saramaDescribe(admin)
	time.Sleep(quiet)
	// Commit the marked offsets (every message was marked before it was counted); Commit is
	// synchronous, its errors go to cg.Errors() and so into the notes.
	h.mu.Lock()
	sess := h.sess
	h.mu.Unlock()
	sess.Commit()
	cancel()
	if err := <-consumeErr; err != nil {
		fail("Consume", err)
	}
	if err := cg.Close(); err != nil {
		fail("ConsumerGroup.Close", err)
	}
	saramaAfterConsume(admin, brokers, cfg)
}

func saramaDescribe(admin sarama.ClusterAdmin) *Group {
	gs, err := admin.DescribeConsumerGroups([]string{*group})
	if err != nil {
		fail("DescribeConsumerGroups", err)
	}
	if len(gs) != 1 {
		fail("DescribeConsumerGroups", fmt.Errorf("%d groups described", len(gs)))
	}
	g := gs[0]
	if g.Err != sarama.ErrNoError {
		fail("DescribeConsumerGroups", g.Err)
	}
	out := &Group{State: g.State, ProtocolType: g.ProtocolType, Protocol: g.Protocol, Members: len(g.Members)}
	for _, m := range g.Members {
		a, err := m.GetMemberAssignment()
		if err != nil {
			fail("GetMemberAssignment", err)
		}
		if a != nil {
			out.Assignment = map[string][]int32{}
			for t, ps := range a.Topics {
				sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
				out.Assignment[t] = ps
			}
		}
	}
	return out
}

func saramaAfterConsume(admin sarama.ClusterAdmin, brokers []string, cfg *sarama.Config) {
	parts := []int32{0, 1, 2}
	ofr, err := admin.ListConsumerGroupOffsets(*group, map[string][]int32{*topic: parts})
	if err != nil {
		fail("ListConsumerGroupOffsets", err)
	}
	if ofr.Err != sarama.ErrNoError {
		fail("ListConsumerGroupOffsets", ofr.Err)
	}
	for _, p := range parts {
		b := ofr.GetBlock(*topic, p)
		if b == nil {
			fail("ListConsumerGroupOffsets", fmt.Errorf("no block for partition %d", p))
		}
		if b.Err != sarama.ErrNoError {
			fail("ListConsumerGroupOffsets", fmt.Errorf("partition %d: %v", p, b.Err))
		}
		res.Committed[pstr(p)] = b.Offset
	}

	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		fail("NewClient", err)
	}
	res.Earliest, res.Latest = map[string]int64{}, map[string]int64{}
	for _, p := range parts {
		e, err := client.GetOffset(*topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("GetOffset(oldest)", err)
		}
		l, err := client.GetOffset(*topic, p, sarama.OffsetNewest)
		if err != nil {
			fail("GetOffset(newest)", err)
		}
		res.Earliest[pstr(p)], res.Latest[pstr(p)] = e, l
	}
	client.Close()

	groups, err := admin.ListConsumerGroups()
	if err != nil {
		fail("ListConsumerGroups", err)
	}
	if pt, ok := groups[*group]; ok {
		res.Listed["protocol_type"] = pt
	}
	res.EmptyGroup = saramaDescribe(admin)

	// DescribeConfigs v0 (sarama's before Version 1.1.0) is gone from Kafka 4 (KIP-896).
	if !cfg.Version.IsAtLeast(sarama.V1_1_0_0) {
		note("DescribeConfigs skipped: needs Version >= 1.1.0.0")
	} else {
		saramaConfigs(admin)
	}

	md, err := admin.DescribeTopics([]string{*topic})
	if err != nil {
		fail("DescribeTopics", err)
	}
	for _, t := range md {
		if t.Err != sarama.ErrNoError {
			fail("DescribeTopics", t.Err)
		}
		for _, p := range t.Partitions {
			res.Partitions = append(res.Partitions, [3]int32{p.ID, p.Leader, int32(len(p.Replicas))})
		}
	}
	sort.Slice(res.Partitions, func(i, j int) bool { return res.Partitions[i][0] < res.Partitions[j][0] })

	// sarama has DeleteGroups (Kafka 1.1's API) from Version 1.1.0.0 on.
	if cfg.Version.IsAtLeast(sarama.V1_1_0_0) {
		res.GroupDeleted = errString(admin.DeleteConsumerGroup(*group))
	} else {
		res.GroupDeleted = "skipped: needs Version >= 1.1.0.0"
	}
	groups, err = admin.ListConsumerGroups()
	if err != nil {
		fail("ListConsumerGroups", err)
	}
	_, res.ListedAfter = groups[*group]

	res.TopicDeleted = errString(admin.DeleteTopic(*topic))
	// Deletion reaches the metadata shortly after the answer: poll for up to 10 s.
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if saramaTopicGone(admin, cfg) {
			res.TopicGone = true
			break
		}
		if time.Now().After(end) {
			break
		}
	}
}

func saramaConfigs(admin sarama.ClusterAdmin) {
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: *topic,
		ConfigNames: ConfigNames})
	if err != nil {
		fail("DescribeConfig", err)
	}
	for _, e := range entries {
		res.Configs[e.Name] = Config{Value: e.Value, Source: saramaSource(e.Source)}
	}
}

// saramaTopicGone: ListTopics (which describes every topic's configs: DescribeConfigs v1+, so
// Version >= 1.1.0.0) no longer has the topic; before 1.1.0.0, Metadata for it answers
// UNKNOWN_TOPIC_OR_PARTITION.
func saramaTopicGone(admin sarama.ClusterAdmin, cfg *sarama.Config) bool {
	if cfg.Version.IsAtLeast(sarama.V1_1_0_0) {
		ts, err := admin.ListTopics()
		if err != nil {
			fail("ListTopics", err)
		}
		_, ok := ts[*topic]
		return !ok
	}
	md, err := admin.DescribeTopics([]string{*topic})
	if err != nil {
		fail("DescribeTopics", err)
	}
	return len(md) == 1 && md[0].Err == sarama.ErrUnknownTopicOrPartition
}
