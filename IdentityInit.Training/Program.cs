using IdentityInit.Training.Cli;

return await Commands.RunAsync(args, Console.Out, Console.Error);
