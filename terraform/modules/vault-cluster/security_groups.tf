# Two groups: the load balancer's (clients in) and the nodes' (LB, operators,
# and each other in). TLS passes through the NLB, so only TCP is opened here.

resource "aws_security_group" "lb" {
  name_prefix = "${var.name}-lb-"
  description = "Network Load Balancer in front of the ${var.name} API (TCP ${var.api_port} pass-through)"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-lb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "lb_api" {
  for_each          = toset(var.api_allowed_cidrs)
  security_group_id = aws_security_group.lb.id
  description       = "API clients to the load balancer"
  ip_protocol       = "tcp"
  from_port         = var.api_port
  to_port           = var.api_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "lb_to_nodes" {
  security_group_id            = aws_security_group.lb.id
  description                  = "Load balancer to the nodes' API listener (traffic and HTTPS health checks)"
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
  referenced_security_group_id = aws_security_group.node.id
}

resource "aws_security_group" "node" {
  name_prefix = "${var.name}-node-"
  description = "${var.name} nodes: API from the LB and operators, Raft between nodes, SSH from operators"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-node" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "node_api_from_lb" {
  security_group_id            = aws_security_group.node.id
  description                  = "API traffic and health checks from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
  referenced_security_group_id = aws_security_group.lb.id
}

resource "aws_vpc_security_group_ingress_rule" "node_api_from_operators" {
  for_each          = toset(var.operator_cidrs)
  security_group_id = aws_security_group.node.id
  description       = "vaultops talks to each node directly (seal status, unseal, snapshots)"
  ip_protocol       = "tcp"
  from_port         = var.api_port
  to_port           = var.api_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "node_ssh_from_operators" {
  for_each          = toset(var.operator_cidrs)
  security_group_id = aws_security_group.node.id
  description       = "vaultops ssh driver (restart, upgrade, certificate install)"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "node_api_from_nodes" {
  security_group_id            = aws_security_group.node.id
  description                  = "retry_join and request forwarding between nodes"
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
  referenced_security_group_id = aws_security_group.node.id
}

resource "aws_vpc_security_group_ingress_rule" "node_cluster_from_nodes" {
  security_group_id            = aws_security_group.node.id
  description                  = "Raft replication and cluster RPC between nodes (mTLS)"
  ip_protocol                  = "tcp"
  from_port                    = var.cluster_port
  to_port                      = var.cluster_port
  referenced_security_group_id = aws_security_group.node.id
}

resource "aws_vpc_security_group_egress_rule" "node_to_nodes_api" {
  security_group_id            = aws_security_group.node.id
  description                  = "retry_join and request forwarding to other nodes"
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
  referenced_security_group_id = aws_security_group.node.id
}

resource "aws_vpc_security_group_egress_rule" "node_to_nodes_cluster" {
  security_group_id            = aws_security_group.node.id
  description                  = "Raft replication and cluster RPC to other nodes"
  ip_protocol                  = "tcp"
  from_port                    = var.cluster_port
  to_port                      = var.cluster_port
  referenced_security_group_id = aws_security_group.node.id
}

resource "aws_vpc_security_group_egress_rule" "node_https" {
  security_group_id = aws_security_group.node.id
  description       = "HTTPS to AWS APIs (KMS auto-unseal) and OS package mirrors; use VPC endpoints to keep it private"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
