package main

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchCommitted reads the group's committed offset of partition 0 with an OffsetFetch request.
func fetchCommitted(ctx context.Context, cl *kgo.Client) (int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = *group
	t := kmsg.NewOffsetFetchRequestTopic()
	t.Topic = *topic
	t.Partitions = []int32{0}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return -1, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return -1, err
			}
			return p.Offset, nil
		}
	}
	return -1, nil
}
