# Network Load Balancer, TCP pass-through: clients' TLS sessions end on the
# nodes (end-to-end TLS). The target group's HTTPS health check on
# /v1/sys/health only accepts 200, which only the active node answers
# (standbys answer 429, sealed nodes 503), so the NLB sends traffic to the
# active node and follows it after a step-down.

resource "aws_lb" "api" {
  #checkov:skip=CKV_AWS_91:NLB access logs are only written for TLS listeners; this NLB passes TCP through so TLS ends on the nodes, and the nodes' audit devices log every request instead.
  name                             = "${var.name}-api"
  load_balancer_type               = "network"
  internal                         = var.lb_internal
  subnets                          = var.subnet_ids
  security_groups                  = [aws_security_group.lb.id]
  enable_cross_zone_load_balancing = true # the one active node sits in one AZ; every LB node must reach it
  enable_deletion_protection       = var.deletion_protection
  tags                             = merge(local.tags, { Name = "${var.name}-api" })
}

resource "aws_lb_target_group" "api" {
  name                   = "${var.name}-api"
  port                   = var.api_port
  protocol               = "TCP"
  target_type            = "instance"
  vpc_id                 = var.vpc_id
  deregistration_delay   = 15
  connection_termination = true # close connections to a deregistered (replaced) node at once

  health_check {
    enabled             = true
    protocol            = "HTTPS"
    port                = "traffic-port"
    path                = "/v1/sys/health"
    matcher             = "200" # active only: standby 429, sealed 503, uninitialised 501
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = merge(local.tags, { Name = "${var.name}-api" })
}

resource "aws_lb_target_group_attachment" "api" {
  for_each         = local.nodes
  target_group_arn = aws_lb_target_group.api.arn
  target_id        = aws_instance.node[each.key].id
  port             = var.api_port
}

resource "aws_lb_listener" "api" {
  load_balancer_arn = aws_lb.api.arn
  port              = var.api_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  tags = local.tags
}

resource "aws_route53_record" "api" {
  zone_id = var.route53_zone_id
  name    = local.lb_fqdn
  type    = "A"

  alias {
    name                   = aws_lb.api.dns_name
    zone_id                = aws_lb.api.zone_id
    evaluate_target_health = true
  }
}
