package embedded

import "go.temporal.io/api/workflowservice/v1"

func describeNS(name string) *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: name}
}
