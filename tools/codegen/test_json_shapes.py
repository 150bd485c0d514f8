"""Tests for json_shapes.py's naming rules and its reach beyond ECS.

Run: python3 -m unittest discover -s tools/codegen
"""

import unittest

import json_shapes


class NamingTest(unittest.TestCase):
    def check(self, function, cases):
        for given, expected in cases:
            with self.subTest(given=given):
                self.assertEqual(function(given), expected)

    def test_enum_values_become_upper_camel_case_variants(self):
        self.check(
            json_shapes.camel_case,
            [
                ("EC2", "Ec2"),
                ("awsvpc", "Awsvpc"),
                ("host", "Host"),
                ("1", "V1"),
                ("json-file", "JsonFile"),
                ("ecs.capability.foo", "EcsCapabilityFoo"),
                ("SERVICE_CONNECT_DEFAULT", "ServiceConnectDefault"),
                ("awsvpcTrunking", "AwsvpcTrunking"),
                ("X86_64", "X86_64"),
                ("V1.1", "V1_1"),
                ("Bits/Second", "BitsSecond"),
                ("ecs:service:DesiredCount", "EcsServiceDesiredCount"),
                ("self", "SelfValue"),
                ("", "Empty"),
            ],
        )

    def test_member_names_become_snake_case_fields(self):
        self.check(
            json_shapes.snake_case,
            [
                ("containerDefinitions", "container_definitions"),
                ("enableECSManagedTags", "enable_ecs_managed_tags"),
                ("ipv6Address", "ipv6_address"),
                ("s3filesVolumeConfiguration", "s3files_volume_configuration"),
                ("NextToken", "next_token"),
                ("type", "type_"),
                ("self", "self_"),
            ],
        )

    def test_first_sentence_strips_html_and_escapes_markdown(self):
        self.check(
            json_shapes.first_sentence,
            [
                ("<p>The details of a task. It has more.</p>", "The details of a task."),
                ("<p>Uses <code>awsvpc</code> mode [see docs].</p><p>x</p>", "Uses awsvpc mode \\[see docs\\]."),
                ("", ""),
            ],
        )

    def test_collisions_get_numbered(self):
        taken = set()
        self.assertEqual(json_shapes.unique("Csv", taken, ""), "Csv")
        self.assertEqual(json_shapes.unique("Csv", taken, ""), "Csv2")


class ServicesTest(unittest.TestCase):
    def test_every_planned_service_generates(self):
        for service in ["ecs", "ecr", "logs", "application-autoscaling"]:
            with self.subTest(service=service):
                code = json_shapes.Generator(service).generate(f"{service}.rs")
                self.assertIn("pub const OPERATIONS: &[Operation]", code)

    def test_self_containing_structures_are_boxed(self):
        generator = json_shapes.Generator("logs")
        self.assertIn(("LogFieldType", "element"), generator.boxed_edges)


if __name__ == "__main__":
    unittest.main()
