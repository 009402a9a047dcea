package main

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func ckErr(step string, e kafka.Error) {
	if e.Code() != kafka.ErrNoError {
		fail(step, e)
	}
}

func runCKGo() {
	rt := kafka.SetAdminRequestTimeout(opTimeout)
	admin, err := kafka.NewAdminClient(ckSASL(&kafka.ConfigMap{"bootstrap.servers": *bootstrap, "log_level": 0}))
	if err != nil {
		fail("NewAdminClient", err)
	}
	defer admin.Close()

	ctx, cancel := opCtx()
	tr, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: *topic, NumPartitions: Partitions,
		ReplicationFactor: 1, Config: map[string]string{"retention.ms": "3600000"}}},
		kafka.SetAdminOperationTimeout(opTimeout))
	cancel()
	if err == nil && tr[0].Error.Code() != kafka.ErrNoError {
		err = tr[0].Error
	}
	res.Created = errString(err)
	if err != nil {
		fail("CreateTopics", err)
	}

	// Produce: record i to partition i%3, acks=all, each delivery report gives the acked offset.
	p, err := kafka.NewProducer(ckSASL(&kafka.ConfigMap{"bootstrap.servers": *bootstrap, "acks": "all",
		"linger.ms": 5, "message.timeout.ms": 20000, "log_level": 0}))
	if err != nil {
		fail("NewProducer", err)
	}
	dr := make(chan kafka.Event, *records)
	for i := 0; i < *records; i++ {
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: topic, Partition: partitionOf(i)},
			Key: key(i), Value: value(i), Timestamp: timestampOf(i), Opaque: i}
		for _, hd := range headers(i) {
			m.Headers = append(m.Headers, kafka.Header{Key: hd[0], Value: []byte(hd[1])})
		}
		if err := p.Produce(m, dr); err != nil {
			fail("Produce", err)
		}
	}
	res.Produced = make([][2]int64, *records)
	for n := 0; n < *records; n++ {
		select {
		case ev := <-dr:
			m := ev.(*kafka.Message)
			if m.TopicPartition.Error != nil {
				fail("delivery", m.TopicPartition.Error)
			}
			res.Produced[m.Opaque.(int)] = [2]int64{int64(m.TopicPartition.Partition), int64(m.TopicPartition.Offset)}
		case <-time.After(25 * time.Second):
			fail("delivery", fmt.Errorf("%d of %d delivery reports", n, *records))
		}
	}
	p.Close()

	// Consume in the group from the earliest offset, then one synchronous commit.
	c, err := kafka.NewConsumer(ckSASL(&kafka.ConfigMap{"bootstrap.servers": *bootstrap, "group.id": *group,
		"auto.offset.reset": "earliest", "enable.auto.commit": false, "session.timeout.ms": 10000,
		"heartbeat.interval.ms": 1000, "fetch.wait.max.ms": 250, "log_level": 0}))
	if err != nil {
		fail("NewConsumer", err)
	}
	if err := c.Subscribe(*topic, nil); err != nil {
		fail("Subscribe", err)
	}
	for end := time.Now().Add(consumeTimeout); len(res.Consumed) < *records; {
		if time.Now().After(end) {
			fail("Poll", fmt.Errorf("read %d of %d records in %s", len(res.Consumed), *records, consumeTimeout))
		}
		switch ev := c.Poll(200).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				fail("Poll", ev.TopicPartition.Error)
			}
			r := Rec{P: ev.TopicPartition.Partition, O: int64(ev.TopicPartition.Offset), T: ev.Timestamp.UnixMilli(),
				K: enc(ev.Key), V: enc(ev.Value), H: [][2]string{}}
			for _, hd := range ev.Headers {
				r.H = append(r.H, [2]string{hd.Key, encHeader(hd.Value)})
			}
			res.Consumed = append(res.Consumed, r)
		case kafka.Error:
			note("consumer error: " + ev.Error())
		}
	}
	// Nothing more may come.
	for end := time.Now().Add(quiet); time.Now().Before(end); {
		if m, ok := c.Poll(100).(*kafka.Message); ok {
			res.Consumed = append(res.Consumed, Rec{P: m.TopicPartition.Partition, O: int64(m.TopicPartition.Offset),
				T: m.Timestamp.UnixMilli(), K: enc(m.Key), V: enc(m.Value), H: [][2]string{}})
		}
	}
	res.ActiveGroup = ckgoDescribe(admin, rt)
	if _, err := c.Commit(); err != nil {
		fail("Commit", err)
	}
	if err := c.Close(); err != nil {
		fail("Consumer.Close", err)
	}

	var tps []kafka.TopicPartition
	for i := int32(0); i < Partitions; i++ {
		tps = append(tps, kafka.TopicPartition{Topic: topic, Partition: i})
	}
	ctx, cancel = opCtx()
	lo, err := admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: *group, Partitions: tps}}, kafka.SetAdminRequireStableOffsets(true))
	cancel()
	if err != nil {
		fail("ListConsumerGroupOffsets", err)
	}
	for _, g := range lo.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Error != nil {
				fail("ListConsumerGroupOffsets", tp.Error)
			}
			res.Committed[pstr(tp.Partition)] = int64(tp.Offset)
		}
	}

	res.Earliest, res.Latest = map[string]int64{}, map[string]int64{}
	for _, spec := range []kafka.OffsetSpec{kafka.EarliestOffsetSpec, kafka.LatestOffsetSpec} {
		req := map[kafka.TopicPartition]kafka.OffsetSpec{}
		for _, tp := range tps {
			req[tp] = spec
		}
		ctx, cancel = opCtx()
		r, err := admin.ListOffsets(ctx, req)
		cancel()
		if err != nil {
			fail("ListOffsets", err)
		}
		for tp, info := range r.ResultInfos {
			ckErr("ListOffsets", info.Error)
			if spec == kafka.EarliestOffsetSpec {
				res.Earliest[pstr(tp.Partition)] = int64(info.Offset)
			} else {
				res.Latest[pstr(tp.Partition)] = int64(info.Offset)
			}
		}
	}

	if g, ok := ckgoListed(admin, rt); ok {
		res.Listed["state"] = g.State.String()
		res.Listed["type"] = g.Type.String()
		res.Listed["simple"] = strconv.FormatBool(g.IsSimpleConsumerGroup)
	}
	res.EmptyGroup = ckgoDescribe(admin, rt)

	ctx, cancel = opCtx()
	dc, err := admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: *topic}}, kafka.SetAdminRequestTimeout(opTimeout))
	cancel()
	if err != nil {
		fail("DescribeConfigs", err)
	}
	for _, r := range dc {
		ckErr("DescribeConfigs", r.Error)
		for _, n := range ConfigNames {
			if e, ok := r.Config[n]; ok {
				res.Configs[n] = Config{Value: e.Value, Source: e.Source.String()}
			}
		}
	}

	ctx, cancel = opCtx()
	dt, err := admin.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames([]string{*topic}), kafka.SetAdminRequestTimeout(opTimeout))
	cancel()
	if err != nil {
		fail("DescribeTopics", err)
	}
	for _, t := range dt.TopicDescriptions {
		ckErr("DescribeTopics", t.Error)
		for _, pi := range t.Partitions {
			leader := int32(-1)
			if pi.Leader != nil {
				leader = int32(pi.Leader.ID)
			}
			res.Partitions = append(res.Partitions, [3]int32{int32(pi.Partition), leader, int32(len(pi.Replicas))})
		}
	}
	sort.Slice(res.Partitions, func(i, j int) bool { return res.Partitions[i][0] < res.Partitions[j][0] })

	ctx, cancel = opCtx()
	dg, err := admin.DeleteConsumerGroups(ctx, []string{*group}, kafka.SetAdminRequestTimeout(opTimeout))
	cancel()
	if err == nil && dg.ConsumerGroupResults[0].Error.Code() != kafka.ErrNoError {
		err = dg.ConsumerGroupResults[0].Error
	}
	res.GroupDeleted = errString(err)
	_, res.ListedAfter = ckgoListed(admin, rt)

	ctx, cancel = opCtx()
	dr2, err := admin.DeleteTopics(ctx, []string{*topic}, kafka.SetAdminOperationTimeout(opTimeout))
	cancel()
	if err == nil && dr2[0].Error.Code() != kafka.ErrNoError {
		err = dr2[0].Error
	}
	res.TopicDeleted = errString(err)
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		md, err := admin.GetMetadata(nil, true, int(opTimeout/time.Millisecond))
		if err != nil {
			fail("GetMetadata", err)
		}
		if _, ok := md.Topics[*topic]; !ok {
			res.TopicGone = true
			break
		}
		if time.Now().After(end) {
			break
		}
	}
}

func ckgoListed(admin *kafka.AdminClient, rt kafka.AdminOptionRequestTimeout) (kafka.ConsumerGroupListing, bool) {
	ctx, cancel := opCtx()
	lg, err := admin.ListConsumerGroups(ctx, rt)
	cancel()
	if err != nil {
		fail("ListConsumerGroups", err)
	}
	if len(lg.Errors) > 0 {
		fail("ListConsumerGroups", lg.Errors[0])
	}
	for _, g := range lg.Valid {
		if g.GroupID == *group {
			return g, true
		}
	}
	return kafka.ConsumerGroupListing{}, false
}

func ckgoDescribe(admin *kafka.AdminClient, rt kafka.AdminOptionRequestTimeout) *Group {
	ctx, cancel := opCtx()
	dg, err := admin.DescribeConsumerGroups(ctx, []string{*group}, rt)
	cancel()
	if err != nil {
		fail("DescribeConsumerGroups", err)
	}
	if len(dg.ConsumerGroupDescriptions) != 1 {
		fail("DescribeConsumerGroups", fmt.Errorf("%d groups described", len(dg.ConsumerGroupDescriptions)))
	}
	g := dg.ConsumerGroupDescriptions[0]
	ckErr("DescribeConsumerGroups", g.Error)
	out := &Group{State: g.State.String(), Protocol: g.PartitionAssignor, Members: len(g.Members)}
	if g.IsSimpleConsumerGroup {
		out.ProtocolType = "(simple)"
	}
	for _, m := range g.Members {
		out.Assignment = map[string][]int32{}
		for _, tp := range m.Assignment.TopicPartitions {
			out.Assignment[*tp.Topic] = append(out.Assignment[*tp.Topic], tp.Partition)
		}
		for _, ps := range out.Assignment {
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		}
	}
	return out
}
