package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

func kafkagoSource(s int8) string {
	switch s {
	case 1:
		return "DYNAMIC_TOPIC_CONFIG"
	case 2:
		return "DYNAMIC_BROKER_CONFIG"
	case 3:
		return "DYNAMIC_DEFAULT_BROKER_CONFIG"
	case 4:
		return "STATIC_BROKER_CONFIG"
	case 5:
		return "DEFAULT_CONFIG"
	}
	return "UNKNOWN(" + strconv.Itoa(int(s)) + ")"
}

func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

func runKafkaGo() {
	addr := kafka.TCP(*bootstrap)
	client := &kafka.Client{Addr: addr, Timeout: opTimeout}

	ctx, cancel := opCtx()
	cr, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: *topic, NumPartitions: Partitions, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}},
	}}})
	cancel()
	if err == nil {
		err = cr.Errors[*topic]
	}
	res.Created = errString(err)
	if err != nil {
		fail("CreateTopics", err)
	}

	trace("created")
	// Produce: record i to partition i%3 (a balancer reading the "idx" header), acks=all; the
	// Completion callback sees each message with its acked partition and offset.
	acked := map[int][2]int64{}
	// Completion runs on one goroutine per partition writer.
	var ackedMu sync.Mutex
	w := &kafka.Writer{
		Addr:  addr,
		Topic: *topic,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
			i, _ := strconv.Atoi(string(m.Headers[0].Value))
			return int(partitionOf(i))
		}),
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    *records,
		MaxAttempts:  20,
		ReadTimeout:  opTimeout,
		WriteTimeout: opTimeout,
		Completion: func(ms []kafka.Message, err error) {
			if err != nil {
				return
			}
			ackedMu.Lock()
			defer ackedMu.Unlock()
			for _, m := range ms {
				i, _ := strconv.Atoi(string(m.Headers[0].Value))
				acked[i] = [2]int64{int64(m.Partition), m.Offset}
			}
		},
	}
	msgs := make([]kafka.Message, *records)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: key(i), Value: value(i), Time: timestampOf(i)}
		for _, hd := range headers(i) {
			msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: hd[0], Value: []byte(hd[1])})
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	err = w.WriteMessages(ctx, msgs...)
	cancel()
	if err != nil {
		fail("WriteMessages", err)
	}
	if err := w.Close(); err != nil {
		fail("Writer.Close", err)
	}
	for i := range msgs {
		a, ok := acked[i]
		if !ok {
			fail("WriteMessages", fmt.Errorf("no completion for record %d", i))
		}
		res.Produced = append(res.Produced, a)
	}

	trace("produced")
	// Consume in the group from the first offset; commit synchronously once all are read.
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           []string{*bootstrap},
		GroupID:           *group,
		Topic:             *topic,
		StartOffset:       kafka.FirstOffset,
		MaxWait:           250 * time.Millisecond,
		CommitInterval:    0,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    250 * time.Millisecond,
		MaxAttempts:       5,
		Dialer:            &kafka.Dialer{Timeout: opTimeout},
	})
	var read []kafka.Message
	ctx, cancel = context.WithTimeout(context.Background(), consumeTimeout)
	for len(read) < *records {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			cancel()
			fail("FetchMessage", fmt.Errorf("after %d of %d records: %w", len(read), *records, err))
		}
		rec := Rec{P: int32(m.Partition), O: m.Offset, T: m.Time.UnixMilli(), K: enc(m.Key), V: enc(m.Value), H: [][2]string{}}
		for _, hd := range m.Headers {
			rec.H = append(rec.H, [2]string{hd.Key, encHeader(hd.Value)})
		}
		res.Consumed = append(res.Consumed, rec)
		read = append(read, m)
	}
	cancel()
	trace("consumed")
	// Nothing more may come.
	ctx, cancel = context.WithTimeout(context.Background(), quiet)
	if m, err := r.FetchMessage(ctx); err == nil {
		res.Consumed = append(res.Consumed, Rec{P: int32(m.Partition), O: m.Offset, T: m.Time.UnixMilli(), K: enc(m.Key), V: enc(m.Value), H: [][2]string{}})
	}
	cancel()

	trace("quiet")
	res.ActiveGroup = kafkagoDescribe(client)
	ctx, cancel = opCtx()
	err = r.CommitMessages(ctx, read...)
	cancel()
	if err != nil {
		fail("CommitMessages", err)
	}
	trace("committed")
	if err := r.Close(); err != nil {
		fail("Reader.Close", err)
	}

	trace("closed")
	parts := []int{0, 1, 2}
	ctx, cancel = opCtx()
	of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: *group, Topics: map[string][]int{*topic: parts}})
	cancel()
	if err == nil {
		err = of.Error
	}
	if err != nil {
		fail("OffsetFetch", err)
	}
	for _, p := range of.Topics[*topic] {
		if p.Error != nil {
			fail("OffsetFetch", fmt.Errorf("partition %d: %w", p.Partition, p.Error))
		}
		res.Committed[strconv.Itoa(p.Partition)] = p.CommittedOffset
	}

	trace("offset-fetched")
	res.Earliest, res.Latest = map[string]int64{}, map[string]int64{}
	for _, which := range []int64{kafka.FirstOffset, kafka.LastOffset} {
		var reqs []kafka.OffsetRequest
		for _, p := range parts {
			reqs = append(reqs, kafka.OffsetRequest{Partition: p, Timestamp: which})
		}
		ctx, cancel = opCtx()
		lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{*topic: reqs}})
		cancel()
		if err != nil {
			fail("ListOffsets", err)
		}
		for _, po := range lo.Topics[*topic] {
			if po.Error != nil {
				fail("ListOffsets", fmt.Errorf("partition %d: %w", po.Partition, po.Error))
			}
			if which == kafka.FirstOffset {
				res.Earliest[strconv.Itoa(po.Partition)] = po.FirstOffset
			} else {
				res.Latest[strconv.Itoa(po.Partition)] = po.LastOffset
			}
		}
	}

	trace("listed-offsets")
	if g, ok := kafkagoListed(client); ok {
		res.Listed["protocol_type"] = g.ProtocolType
	}
	res.EmptyGroup = kafkagoDescribe(client)

	ctx, cancel = opCtx()
	dc, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: *topic, ConfigNames: ConfigNames}}})
	cancel()
	if err != nil {
		fail("DescribeConfigs", err)
	}
	for _, rr := range dc.Resources {
		if rr.Error != nil {
			fail("DescribeConfigs", rr.Error)
		}
		for _, e := range rr.ConfigEntries {
			res.Configs[e.ConfigName] = Config{Value: e.ConfigValue, Source: kafkagoSource(e.ConfigSource)}
		}
	}

	ctx, cancel = opCtx()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{*topic}})
	cancel()
	if err != nil {
		fail("Metadata", err)
	}
	for _, t := range md.Topics {
		if t.Error != nil {
			fail("Metadata", t.Error)
		}
		for _, p := range t.Partitions {
			res.Partitions = append(res.Partitions, [3]int32{int32(p.ID), int32(p.Leader.ID), int32(len(p.Replicas))})
		}
	}
	sort.Slice(res.Partitions, func(i, j int) bool { return res.Partitions[i][0] < res.Partitions[j][0] })

	trace("described")
	ctx, cancel = opCtx()
	dg, err := client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{*group}})
	cancel()
	if err == nil {
		err = dg.Errors[*group]
	}
	res.GroupDeleted = errString(err)
	_, res.ListedAfter = kafkagoListed(client)

	trace("group-deleted")
	ctx, cancel = opCtx()
	dt, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{*topic}})
	cancel()
	if err == nil {
		err = dt.Errors[*topic]
	}
	res.TopicDeleted = errString(err)
	// Client.Metadata answers from its transport's metadata cache (refreshed every 0-6 s): a
	// fresh transport that refreshes every 100 ms sees the deletion when the broker has it.
	fresh := &kafka.Client{Addr: addr, Timeout: opTimeout, Transport: &kafka.Transport{MetadataTTL: 100 * time.Millisecond}}
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel = opCtx()
		md, err := fresh.Metadata(ctx, &kafka.MetadataRequest{})
		cancel()
		if err != nil {
			fail("Metadata", err)
		}
		present := false
		for _, t := range md.Topics {
			present = present || t.Name == *topic
		}
		if !present {
			res.TopicGone = true
			trace("topic gone")
			break
		}
		if time.Now().After(end) {
			break
		}
	}
}

func kafkagoListed(client *kafka.Client) (kafka.ListGroupsResponseGroup, bool) {
	ctx, cancel := opCtx()
	lg, err := client.ListGroups(ctx, &kafka.ListGroupsRequest{})
	cancel()
	if err == nil {
		err = lg.Error
	}
	if err != nil {
		fail("ListGroups", err)
	}
	for _, g := range lg.Groups {
		if g.GroupID == *group {
			return g, true
		}
	}
	return kafka.ListGroupsResponseGroup{}, false
}

func kafkagoDescribe(client *kafka.Client) *Group {
	ctx, cancel := opCtx()
	dg, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{*group}})
	cancel()
	if err != nil {
		fail("DescribeGroups", err)
	}
	if len(dg.Groups) != 1 {
		fail("DescribeGroups", fmt.Errorf("%d groups described", len(dg.Groups)))
	}
	g := dg.Groups[0]
	if g.Error != nil {
		fail("DescribeGroups", g.Error)
	}
	out := &Group{State: g.GroupState, Members: len(g.Members)}
	for _, m := range g.Members {
		out.Assignment = map[string][]int32{}
		for _, t := range m.MemberAssignments.Topics {
			var ps []int32
			for _, p := range t.Partitions {
				ps = append(ps, int32(p))
			}
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			out.Assignment[t.Topic] = ps
		}
	}
	return out
}
